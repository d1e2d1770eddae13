"""Designate routes minidns does not have answer 501 naming the feature; a missing zone stays 404."""

from __future__ import annotations

import uuid

from conftest import ALICE, BOB
from v2util import error, make_zone

from minidns.admin.unsupported import UNSUPPORTED


def test_unsupported_routes_name_the_feature(api):
    z = make_zone(api, "prim.test.", token=ALICE)
    doc = api.get("/openapi.json", token=None).json()
    for method, path, feature, why in UNSUPPORTED:
        assert "501" in doc["paths"][path][method.lower()]["responses"]
        body = error(api.request(method, path.replace("{zone_id}", z["id"]), token=ALICE), 501, "not_supported")
        assert body["message"] == f"{feature} is not supported by minidns: {why}"
        error(api.request(method, path.replace("{zone_id}", str(uuid.uuid4())), token=ALICE), 404, "zone_not_found")
        error(api.request(method, path.replace("{zone_id}", z["id"]), token=BOB), 404, "zone_not_found")
    error(api.get("/v2/no-such-thing", token=ALICE), 404, "not_found")
