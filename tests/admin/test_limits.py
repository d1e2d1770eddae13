"""/v2/limits: Designate's keys with the acting project's quotas and minidns's field bounds."""

from __future__ import annotations

from conftest import ADMIN, ALICE, BOB
from v2util import make_zone


def test_limits_are_the_acting_projects(api):
    body = api.get("/v2/limits", token=ALICE).json()
    assert body == {"max_zones": 10, "max_zone_recordsets": 500, "max_zone_records": 500, "max_recordset_records": 20,
                    "min_ttl": 1, "max_zone_name_length": 254, "max_recordset_name_length": 254,
                    "max_page_limit": 1000}  # fmt: skip
    assert api.patch("/v2/quotas/alice", json={"zones": 1, "recordset_records": -1}).status_code == 200
    assert api.get("/v2/limits", token=ALICE).json() == {**body, "max_zones": 1, "max_recordset_records": -1}
    assert api.get("/v2/limits", token=BOB).json() == body
    assert api.get("/v2/limits", token=ADMIN, headers={"X-Auth-Sudo-Project-ID": "alice"}).json()["max_zones"] == 1
    # The limits are the ones enforced: the second zone is over alice's quota.
    make_zone(api, "one.test.", token=ALICE)
    assert api.post("/v2/zones", json={"name": "two.test.", "email": "h@two.test"}, token=ALICE).status_code == 413
    name = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 62 + "."
    assert len(name) == 255  # one past max_zone_name_length
    assert api.post("/v2/zones", json={"name": name, "email": "h@x.test"}, token=BOB).status_code == 400
