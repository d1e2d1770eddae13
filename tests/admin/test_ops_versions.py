"""Version discovery: Designate's version list at /, the v2 document at /v2, read by
keystoneauth's own discovery from either endpoint form; a Designate path without /v2 redirected
there with its method and body."""

from __future__ import annotations

import pytest

from conftest import ALICE
from v2util import error

discover = pytest.importorskip("keystoneauth1.discover")
session = pytest.importorskip("keystoneauth1.session")


def test_version_documents(api):
    versions = api.get("/", token=None).json()["versions"]
    assert [(v["id"], v["status"]) for v in versions] == [("v2", "SUPPORTED"), ("v2.0", "SUPPORTED"), ("v2.1", "CURRENT")]
    assert {link["href"] for v in versions for link in v["links"] if link["rel"] == "self"} == {f"{api.url}/v2"}
    for path in ("/v2", "/v2/"):
        assert api.get(path, token=None).json()["version"]["id"] == "v2.1"


def test_keystoneauth_discovers_v2_from_either_endpoint_form(api):
    s = session.Session()
    for url in (api.url, f"{api.url}/", f"{api.url}/v2", f"{api.url}/v2/"):
        data = discover.Discover(s, url).versioned_data_for(min_version="2", max_version="2.latest")
        assert data["url"] == f"{api.url}/v2" and data["version"] == (2, 1), url


def test_designate_paths_without_v2_are_redirected_with_method_and_body(api):
    r = api.post("/zones?x=1", json={"name": "r.test.", "email": "h@r.test"}, token=ALICE, allow_redirects=False)
    assert r.status_code == 308 and r.headers["Location"] == f"{api.url}/v2/zones?x=1"
    r = api.post("/zones", json={"name": "r.test.", "email": "h@r.test"}, token=ALICE)  # followed, body and all
    assert r.status_code == 202 and r.json()["name"] == "r.test."
    assert [z["name"] for z in api.get("/zones", token=ALICE).json()["zones"]] == ["r.test."]
    assert api.get("/service_statuses", token=None, allow_redirects=False).status_code == 308
    error(api.get("/nothing-here", token=ALICE), 404, "not_found")
    error(api.get("/v2/zones", token=None), 401, "unauthorized")
