"""The heartbeat TXT (store/heartbeat.py) as the API shows it: a recordset of each zone, read-only
like Designate's managed records, carrying the serial of the zone's latest change."""

from __future__ import annotations

import re

import pytest

from conftest import ALICE, ADMIN
from v2util import error, make_rrset, make_zone, wait_active

HB = "_heartbeat"


@pytest.fixture
def hb_api(api_config, request):
    api_config.write_text(api_config.read_text() + f'heartbeat_name = "{HB}"\n')
    return request.getfixturevalue("api")


def heartbeat_rrset(api, zid: str, token=ALICE) -> dict:
    r = api.get(f"/v2/zones/{zid}/recordsets?type=TXT&name={HB}.*", token=token)
    assert r.status_code == 200, r.text
    found = r.json()["recordsets"]
    assert len(found) == 1, found
    return found[0]


def test_the_heartbeat_is_a_read_only_recordset_with_the_zones_serial(hb_api):
    api = hb_api
    zid = make_zone(api, "beat.example.", token=ALICE)["id"]
    rs = heartbeat_rrset(api, zid)
    serial = api.get(f"/v2/zones/{zid}", token=ALICE).json()["serial"]
    assert rs["name"] == f"{HB}.beat.example." and rs["ttl"] == 0
    assert re.fullmatch(rf'"serial={serial} committed=\S+Z unix=\d+"', rs["records"][0]), rs
    make_rrset(api, zid, "www.beat.example.", "A", ["192.0.2.1"], token=ALICE)
    z = wait_active(api, zid, ALICE)
    assert heartbeat_rrset(api, zid)["records"][0].startswith(f'"serial={z["serial"]} ')
    path = f"/v2/zones/{zid}/recordsets/{rs['id']}"
    error(api.put(path, json={"records": ['"mine"']}, token=ALICE), 400)
    error(api.delete(path, token=ALICE), 400)
    admin = {"X-Designate-Edit-Managed-Records": "true", "X-Auth-All-Projects": "true"}
    r = api.put(path, json={"records": ['"by hand"']}, token=ADMIN, headers=admin)
    assert r.status_code == 202, r.text  # an admin may; the next change writes the heartbeat again
    z = wait_active(api, zid, ALICE)
    assert heartbeat_rrset(api, zid)["records"][0].startswith(f'"serial={z["serial"]} ')
