"""The real python-designateclient v2 client against a real `minidns serve`: zones, recordsets,
imports and exports as an OpenStack user drives them."""

from __future__ import annotations

import pytest

from conftest import ADMIN, ALICE
from v2util import answers, nxdomain, wait_active

client_mod = pytest.importorskip("designateclient.v2.client")
exceptions = pytest.importorskip("designateclient.exceptions")
session_mod = pytest.importorskip("keystoneauth1.session")
token_endpoint = pytest.importorskip("keystoneauth1.token_endpoint")


def designate(api, token=ALICE, **kw):
    """A designateclient v2 Client on a keystoneauth session with a fixed token; the token plugin
    takes the endpoint as given, so it is the v2 root (Designate's catalog entry is the same)."""
    sess = session_mod.Session(auth=token_endpoint.Token(endpoint=f"{api.url}/v2", token=token))
    return client_mod.Client(session=sess, **kw)


def test_zones_and_recordsets_through_designateclient(api):
    c = designate(api)
    z = c.zones.create("client.test.", email="hostmaster@client.test", ttl=600, description="via client")
    assert z["status"] == "PENDING" and z["action"] == "CREATE" and z["project_id"] == "alice"
    assert [x["name"] for x in c.zones.list()] == ["client.test."]
    assert c.zones.get("client.test.")["id"] == z["id"]  # resolved by name, then by id
    assert c.zones.get(z["id"])["ttl"] == 600
    wait_active(api, z["id"], ALICE)
    z2 = c.zones.update("client.test.", {"email": "dns@client.test", "ttl": 900})
    assert z2["email"] == "dns@client.test" and z2["serial"] > z["serial"]
    with pytest.raises(exceptions.Conflict):
        c.zones.create("client.test.", email="hostmaster@client.test")
    with pytest.raises(exceptions.BadRequest):
        c.zones.create("client", email="hostmaster@client.test")
    with pytest.raises(exceptions.NotFound):
        c.zones.get("nothing.test.")

    rs = c.recordsets.create("client.test.", "www", "A", ["192.0.2.1"])  # name made absolute by the client
    assert rs["name"] == "www.client.test." and rs["ttl"] is None
    api.wait_dns("www.client.test.", "A", answers("www.client.test.", "A", {"192.0.2.1"}))
    c.recordsets.create(z["id"], "mail.client.test.", "MX", ["10 mx.example.net."], ttl=300, description="mx")
    names = {r["name"] for r in c.recordsets.list("client.test.")}
    assert names == {"client.test.", "www.client.test.", "mail.client.test."}
    assert c.recordsets.get("client.test.", "www.client.test.")["records"] == ["192.0.2.1"]
    assert [r["type"] for r in c.recordsets.list("client.test.", criterion={"type": "MX"})] == ["MX"]
    assert {r["zone_name"] for r in c.recordsets.list_all_zones()} == {"client.test."}
    up = c.recordsets.update("client.test.", rs["id"], {"records": ["192.0.2.2", "192.0.2.3"], "ttl": 120})
    assert sorted(up["records"]) == ["192.0.2.2", "192.0.2.3"] and up["ttl"] == 120
    api.wait_dns("www.client.test.", "A", answers("www.client.test.", "A", {"192.0.2.2", "192.0.2.3"}))
    with pytest.raises(exceptions.Conflict):
        c.recordsets.create("client.test.", "www", "A", ["192.0.2.9"])
    with pytest.raises(exceptions.BadRequest):
        c.recordsets.create("client.test.", "bad", "A", ["not-an-address"])
    c.recordsets.delete("client.test.", rs["id"])
    api.wait_dns("www.client.test.", "A", nxdomain)
    assert c.nameservers.list("client.test.") == [{"hostname": "ns1.pool.test.", "priority": 1},
                                                   {"hostname": "ns2.pool.test.", "priority": 2}]
    assert [p["ns_records"] for p in designate(api, ADMIN).pools.list()] == [c.nameservers.list("client.test.")]

    # Paging the client's way: every page followed by utils.get_all.
    from designateclient.v2 import utils

    for i in range(25):
        c.recordsets.create(z["id"], f"h{i}.client.test.", "A", [f"192.0.2.{i + 10}"])
    every = utils.get_all(c.recordsets.list, criterion={"type": "A"}, args=[z["id"]])
    assert len(every) == 25 and len({r["id"] for r in every}) == 25

    # Another project, and an admin across projects.
    bob = designate(api, token="bob-token-0123456789")
    assert bob.zones.list() == []
    with pytest.raises(exceptions.NotFound):
        bob.zones.get(z["id"])
    admin_all = designate(api, token=ADMIN, all_projects=True)
    assert [x["name"] for x in admin_all.zones.list()] == ["client.test."]
    admin_sudo = designate(api, token=ADMIN, sudo_project_id="alice")
    assert admin_sudo.zones.get(z["id"])["project_id"] == "alice"

    deleted = c.zones.delete("client.test.")
    assert deleted["action"] == "DELETE"
    assert c.zones.list() == []
    api.wait_dns("www.client.test.", "SOA", lambda m: m.rcode() == 5)


def test_imports_and_exports_through_designateclient(api):
    c = designate(api)
    text = ("$ORIGIN imp.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 1209600 300\n@ IN NS ns1\n"
            "ns1 IN A 192.0.2.53\nwww IN A 192.0.2.80\n")  # fmt: skip
    imp = c.zone_imports.create(text)
    assert imp["status"] == "COMPLETE" and imp["zone_id"], imp
    assert c.zone_imports.get_import_record(imp["id"])["zone_id"] == imp["zone_id"]
    assert [i["id"] for i in c.zone_imports.list()] == [imp["id"]]
    api.wait_dns("www.imp.test.", "A", answers("www.imp.test.", "A", {"192.0.2.80"}))
    assert c.zones.nameservers("imp.test.") == [{"hostname": "ns1.imp.test.", "priority": 1}]

    exp = c.zone_exports.create("imp.test.")
    assert exp["status"] == "COMPLETE" and exp["zone_id"] == imp["zone_id"]
    assert c.zone_exports.get_export_record(exp["id"])["location"].startswith("designate://")
    assert [e["id"] for e in c.zone_exports.list()] == [exp["id"]]
    zone_file = c.zone_exports.get_export(exp["id"])
    assert "www.imp.test. 300 IN A 192.0.2.80" in zone_file and zone_file.startswith("$ORIGIN imp.test.")
    c.zone_exports.delete(exp["id"])
    c.zone_imports.delete(imp["id"])
    assert c.zone_exports.list() == [] and c.zone_imports.list() == []
    bad = c.zone_imports.create("$ORIGIN bad.test.\nwww IN A 192.0.2.1\n")
    assert bad["status"] == "ERROR" and bad["message"]
