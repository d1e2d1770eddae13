"""/v2/minidns/update_grants: the UPDATE grant table over the API, admin only — created (at the end
or at a position), listed in read order and by key or zone, shown, deleted; a grant that is no
grant refused 400 with the reason, an unknown id 404, another role 403, nothing written by a
refused request."""

from __future__ import annotations

import uuid

import pytest
from conftest import ADMIN, ALICE, READER
from policyutil import counts, error, run

from minidns.store.transfer_settings import load_settings
from minidns.xfr.grants import grant_from

BASE = "/v2/minidns/update_grants"
DHCP = {"key": "ddns-key.", "zone": "example.com.", "match": "subdomain", "pattern": "dyn.example.com.",
        "types": ["A", "AAAA", "TXT", "DHCID"], "description": "kea leases"}  # fmt: skip


def test_grants_are_created_listed_in_order_shown_and_deleted(api):
    r = api.post(BASE, json=DHCP)
    assert r.status_code == 201, r.text
    dhcp = r.json()
    assert set(dhcp) == {"id", "position", "key", "zone", "match", "pattern", "types", "action", "managed", "description",
                         "created_at", "links"}  # fmt: skip
    assert (dhcp["position"], dhcp["types"], dhcp["action"], dhcp["managed"]) == (1, ["A", "AAAA", "DHCID", "TXT"], "grant", False)
    assert r.headers["Location"] == dhcp["links"]["self"] == f"{api.url}{BASE}/{dhcp['id']}"
    deny = api.post(BASE, json={"key": "DDNS-Key", "match": "name", "pattern": "NS1.example.com", "action": "deny",
                                "managed": True, "position": 1}).json()  # fmt: skip
    assert (deny["position"], deny["key"], deny["zone"], deny["pattern"], deny["types"]) == (1, "ddns-key.", None, "ns1.example.com.", [])
    acme = api.post(BASE, json={"key": "acme-key.", "zone": "example.org.", "match": "wildcard", "pattern": "*.example.org.",
                                "types": ["TXT"]}).json()  # fmt: skip
    listed = api.get(BASE).json()
    assert [(g["id"], g["position"]) for g in listed["update_grants"]] == [(deny["id"], 1), (dhcp["id"], 2), (acme["id"], 3)]
    assert listed["metadata"]["total_count"] == 3 and listed["links"]["self"].endswith(BASE)
    assert api.get(f"{BASE}/{dhcp['id']}").json() == {**dhcp, "position": 2}
    assert [g["id"] for g in api.get(f"{BASE}?key=acme-key").json()["update_grants"]] == [acme["id"]]
    assert [g["id"] for g in api.get(f"{BASE}?zone=example.com.").json()["update_grants"]] == [deny["id"], dhcp["id"]]
    assert api.delete(f"{BASE}/{deny['id']}").status_code == 204
    assert [(g["id"], g["position"]) for g in api.get(BASE).json()["update_grants"]] == [(dhcp["id"], 1), (acme["id"], 2)]
    error(api.get(f"{BASE}/{deny['id']}"), 404, "update_grant_not_found")
    error(api.delete(f"{BASE}/{deny['id']}"), 404, "update_grant_not_found")


@pytest.mark.parametrize("body, message", [
    ({**DHCP, "match": "regex"}, "match 'regex' is not one of name, subdomain, wildcard, self, selfsub, zone"),
    ({**DHCP, "pattern": "dyn.example.org."}, "pattern dyn.example.org. is outside the zone example.com."),
    ({**DHCP, "match": "wildcard"}, "wildcard pattern dyn.example.com. does not start with a '*' label"),
    ({**DHCP, "types": ["A", "RRSIG"]}, "types: RRSIG is a DNSSEC type"),
    ({**DHCP, "types": ["A", "BOGUS"]}, "types: unknown type 'BOGUS'"),
    ({**DHCP, "action": "allow"}, "action 'allow' is not grant or deny"),
    ({**DHCP, "position": 5}, "position 5 is past the end"),
    ({**DHCP, "position": 0}, "position must be a whole number from 1"),
    ({**DHCP, "managed": "yes"}, "managed"),
    ({**DHCP, "colour": "red"}, "colour"),
    ({**DHCP, "id": str(uuid.uuid4())}, "id is read-only"),
    ({"match": "zone"}, "key required"),
])  # fmt: skip
def test_a_bad_grant_is_refused_400_with_its_reason_and_writes_nothing(api, body, message):
    before = counts(api)
    body_ = error(api.post(BASE, json=body), 400)
    assert message in body_["message"], body_
    assert counts(api) == before


@pytest.mark.parametrize("token", [ALICE, READER])
def test_only_an_admin_reads_or_writes_grants(api, token):
    made = api.post(BASE, json=DHCP, token=ADMIN).json()
    before = counts(api)
    error(api.get(BASE, token=token), 403, "forbidden")
    error(api.post(BASE, json=DHCP, token=token), 403, "forbidden")
    error(api.get(f"{BASE}/{made['id']}", token=token), 403, "forbidden")
    error(api.delete(f"{BASE}/{made['id']}", token=token), 403, "forbidden")
    assert counts(api) == before
    error(api.get(BASE, token=None), 401)


def test_a_bad_id_is_400_and_an_unknown_one_404(api):
    error(api.get(f"{BASE}/nope"), 400, "invalid_uuid")
    error(api.delete(f"{BASE}/{uuid.uuid4()}"), 404, "update_grant_not_found")


def test_a_grant_made_over_the_api_is_what_the_servers_load(api):
    """store/transfer_settings.load_settings, which the servers run on the config channel's NOTIFY,
    reads the grant back as the Grant the body describes."""
    grant = {k: v for k, v in DHCP.items() if k != "description"}
    assert api.post(BASE, json=grant).status_code == 201
    assert run(api, load_settings).update_grants == (grant_from(grant),)
