"""Zone abandon: admin only, the zone gone from minidns at once (REFUSED), its catalog entry left
for the secondaries, which keep their copy."""

from __future__ import annotations

import uuid

import dns.rcode

from conftest import ADMIN, ALICE
from v2util import error, make_zone, wait_active


def member_ptr(api, catalog: str, zone_id: str) -> set[str]:
    reply = api.dig(f"{uuid.UUID(zone_id).hex}.zones.{catalog}", "PTR")
    return {rd.to_text() for rrset in reply.answer for rd in rrset}


def test_abandon_removes_the_zone_here_and_tells_the_secondaries_nothing(api, cli):
    p = cli("catalog", "create", "catalog.invalid.", "--database-url", api.database_url)
    assert p.returncode == 0, p.stderr
    z = make_zone(api, "gone.test.", token=ALICE)
    wait_active(api, z["id"], ALICE)
    api.wait_dns(f"{uuid.UUID(z['id']).hex}.zones.catalog.invalid.", "PTR",
                 lambda reply: member_ptr(api, "catalog.invalid.", z["id"]) == {"gone.test."})  # fmt: skip
    catalog_serial = next(iter(api.dig("catalog.invalid.", "SOA").answer[0])).serial

    error(api.post(f"/v2/zones/{z['id']}/tasks/abandon", token=ALICE), 403, "forbidden")
    error(api.post(f"/v2/zones/{uuid.uuid4()}/tasks/abandon", token=ADMIN), 404, "zone_not_found")
    error(api.post("/v2/zones/nope/tasks/abandon", token=ADMIN), 400, "invalid_uuid")
    assert api.get(f"/v2/zones/{z['id']}/tasks/abandon", token=ADMIN).status_code == 405

    r = api.post(f"/v2/zones/{z['id']}/tasks/abandon", token=ADMIN)  # another project's zone: an admin's call
    assert r.status_code == 204 and r.content == b""
    api.wait_dns("gone.test.", "SOA", lambda reply: reply.rcode() == dns.rcode.REFUSED)
    error(api.get(f"/v2/zones/{z['id']}", token=ALICE), 404, "zone_not_found")
    # The catalog still lists it, at the same serial: consumers keep the zone until it expires.
    assert next(iter(api.dig("catalog.invalid.", "SOA").answer[0])).serial == catalog_serial
    assert member_ptr(api, "catalog.invalid.", z["id"]) == {"gone.test."}
    # The same name made again: one catalog entry for it, the new zone's (RFC 9432 §4.3).
    again = make_zone(api, "gone.test.", ALICE)
    api.wait_dns("catalog.invalid.", "SOA", lambda reply: next(iter(reply.answer[0])).serial != catalog_serial)
    assert member_ptr(api, "catalog.invalid.", again["id"]) == {"gone.test."}
    assert member_ptr(api, "catalog.invalid.", z["id"]) == set()
