"""The real python-designateclient v2 client for TSIG keys, TLDs, blacklists, quotas and floating
IP PTRs, against a real `minidns serve`."""

from __future__ import annotations

import base64
import uuid

import pytest
from conftest import ADMIN, ALICE
from policyutil import make_zone

client_mod = pytest.importorskip("designateclient.v2.client")
exceptions = pytest.importorskip("designateclient.exceptions")
session_mod = pytest.importorskip("keystoneauth1.session")
token_endpoint = pytest.importorskip("keystoneauth1.token_endpoint")

POOL = "794ccc2c-d751-44fe-b57f-8894c9f5c842"
SECRET = base64.b64encode(b"s" * 32).decode()


def designate(api, token=ADMIN, **kw):
    """A designateclient v2 Client on a keystoneauth session with a fixed token. The token plugin
    takes the endpoint as given, so it is the v2 root (as Designate's catalog entry is)."""
    sess = session_mod.Session(auth=token_endpoint.Token(endpoint=f"{api.url}/v2", token=token))
    return client_mod.Client(session=sess, **kw)


def test_tsigkeys_through_designateclient(api):
    c = designate(api)
    key = c.tsigkeys.create("client-key", "hmac-sha256", SECRET, "POOL", POOL)
    assert key["name"] == "client-key." and key["secret"] == SECRET and key["scope"] == "POOL"
    assert [k["id"] for k in c.tsigkeys.list()] == [key["id"]]
    assert c.tsigkeys.get("client-key")["id"] == key["id"]  # resolved by name
    assert c.tsigkeys.get(key["id"])["algorithm"] == "hmac-sha256"
    new = base64.b64encode(b"t" * 48).decode()
    assert c.tsigkeys.update("client-key", {"secret": new, "algorithm": "hmac-sha384"})["secret"] == new
    with pytest.raises(exceptions.Conflict):
        c.tsigkeys.create("client-key", "hmac-sha256", SECRET, "POOL", POOL)
    with pytest.raises(exceptions.BadRequest):
        c.tsigkeys.create("other", "hmac-sha3", SECRET, "POOL", POOL)
    with pytest.raises(exceptions.Forbidden):
        designate(api, ALICE).tsigkeys.list()
    c.tsigkeys.delete("client-key")
    assert c.tsigkeys.list() == []
    with pytest.raises(exceptions.NotFound):
        c.tsigkeys.get(str(uuid.uuid4()))


def test_tlds_and_blacklists_through_designateclient(api):
    c = designate(api)
    tld = c.tlds.create("com", description="commercial")
    assert tld["name"] == "com" and tld["description"] == "commercial"
    assert [t["name"] for t in designate(api, ALICE).tlds.list()] == ["com"]
    assert c.tlds.get("com")["id"] == tld["id"]
    assert c.tlds.update("com", {"description": "changed"})["description"] == "changed"
    with pytest.raises(exceptions.Conflict):
        c.tlds.create("com")
    with pytest.raises(exceptions.Forbidden):
        designate(api, ALICE).tlds.create("net")
    c.tlds.delete("com")
    assert c.tlds.list() == []

    bl = c.blacklists.create(r"^bad\.", description="no")
    assert bl["pattern"] == r"^bad\." and c.blacklists.get(bl["id"])["description"] == "no"
    assert c.blacklists.update(bl["id"], {"description": "never"})["description"] == "never"
    assert [b["id"] for b in c.blacklists.list()] == [bl["id"]]
    c.blacklists.delete(bl["id"])
    assert c.blacklists.list() == []


def test_quotas_and_floatingips_through_designateclient(api):
    c = designate(api)
    assert c.quotas.list("alice")["zones"] == 10
    assert c.quotas.update("alice", {"zones": 3})["zones"] == 3
    assert designate(api, ALICE).quotas.list()["zones"] == 3
    c.quotas.reset("alice")
    assert c.quotas.list("alice")["zones"] == 10

    fid = str(uuid.uuid4())
    api.post("/v2/reverse/floatingips", json={"region": "RegionOne", "id": fid, "address": "198.51.100.7",
                                              "project_id": "alice"})  # fmt: skip
    make_zone(api, "100.51.198.in-addr.arpa.")
    alice = designate(api, ALICE)
    assert [f["address"] for f in alice.floatingips.list()] == ["198.51.100.7"]
    got = alice.floatingips.set(f"RegionOne:{fid}", "vm.example.", description="vm", ttl=300)
    assert got["ptrdname"] == "vm.example."
    assert alice.floatingips.get(f"RegionOne:{fid}")["ptrdname"] == "vm.example."
    alice.floatingips.unset(f"RegionOne:{fid}")
    assert alice.floatingips.get(f"RegionOne:{fid}")["ptrdname"] is None
