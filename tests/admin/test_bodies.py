"""Request bodies are read whole, however they arrive (issue 17, part 1): on every POST, PUT and
PATCH route of the API (taken from the app's route tables, so a new route cannot be forgotten),
a body sent slowly in many small pieces, in two TCP segments with a pause between, or chunked
(RFC 9112 §7.1) is read to its end; a body over the route's bound is refused 413 with
Designate's error body, whether Content-Length says so or a chunked body grows past it; a body
the client cuts off stores nothing. The client here is a raw socket: what reaches the server, and
when, is exactly what the test writes."""

from __future__ import annotations

import inspect
import re
import select
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.query
import dns.rdatatype
import dns.zone
import orjson
import pytest

from minidns.admin.app import route_modules
from minidns.services import pools

from conftest import ADMIN, ALICE, INGEST
from test_events import CONFIG as EVENTS_CONFIG
from test_events import db_run, fresh, load, make_zones
from v2util import answers, error

BODY_METHODS = ("POST", "PUT", "PATCH")
PIECE_PAUSE = 0.05
READERS = ("read_json", "read_body", "_zone_file_text", "_body(")  # what reads a body in minidns/admin


# -- a raw HTTP/1.1 client -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return orjson.loads(self.body)


class Raw:
    """HTTP/1.1 over a plain socket, with the body delivered in the way a test names."""

    def __init__(self, api):
        host, port = api.url.removeprefix("http://").split(":")
        self.address = (host, int(port))

    def connect(self) -> socket.socket:
        s = socket.create_connection(self.address, timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each send its own segment
        return s

    def head(self, method: str, path: str, ctype: str, token: str | None = ADMIN) -> bytes:
        """The request line and headers but the body's framing (Content-Length or chunked) and
        the empty line that ends them."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.address[0]}", f"Content-Type: {ctype}", "Connection: close"]
        if token:
            lines.append(f"X-Auth-Token: {token}")
        return "".join(f"{line}\r\n" for line in lines).encode()

    def send(self, method: str, path: str, body: bytes, mode: str, ctype: str = "application/json",
             token: str | None = ADMIN) -> Reply:  # fmt: skip
        """Send `body` in `mode` (one of MODES) and return the reply."""
        with self.connect() as s:
            MODES[mode](s, self.head(method, path, ctype, token), body)
            return read_reply(s)


def framed(head: bytes, framing: str) -> bytes:
    """The headers with the body's framing header, ended."""
    return head + f"{framing}\r\n\r\n".encode()


def pieces(body: bytes, n: int) -> list[bytes]:
    """`body` cut in `n` pieces (fewer when it is shorter), none empty."""
    size = max(1, -(-len(body) // n))
    return [body[i : i + size] for i in range(0, len(body), size)]


def in_pieces(s: socket.socket, head: bytes, body: bytes) -> None:
    """The headers, then the body in 12 small pieces with a pause before each."""
    s.sendall(framed(head, f"Content-Length: {len(body)}"))
    for piece in pieces(body, 12):
        time.sleep(PIECE_PAUSE)
        s.sendall(piece)


def in_two(s: socket.socket, head: bytes, body: bytes) -> None:
    """The headers and the first 20 octets of the body, 0.3 s, the rest."""
    s.sendall(framed(head, f"Content-Length: {len(body)}") + body[:20])
    time.sleep(0.3)
    s.sendall(body[20:])


def chunked(s: socket.socket, head: bytes, body: bytes) -> None:
    """Transfer-Encoding: chunked, the body in 5 chunks sent apart, then the last chunk."""
    s.sendall(framed(head, "Transfer-Encoding: chunked"))
    for piece in pieces(body, 5):
        time.sleep(PIECE_PAUSE)
        s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
    s.sendall(b"0\r\n\r\n")


OVER = 64 << 20  # over the bound of every route


def over_by_length(s: socket.socket, head: bytes, body: bytes) -> None:
    """Content-Length over every bound, and no body at all: the refusal must not wait for it."""
    s.sendall(framed(head, f"Content-Length: {OVER}"))


def over_chunked(s: socket.socket, head: bytes, body: bytes) -> None:
    """A chunked body that grows, 256 KiB a chunk, until the server answers (past its bound)."""
    s.sendall(framed(head, "Transfer-Encoding: chunked"))
    chunk = b"%x\r\n%s\r\n" % (256 << 10, b" " * (256 << 10))
    for _ in range(OVER // (256 << 10)):
        if select.select([s], [], [], 0)[0]:
            return
        s.sendall(chunk)
    s.sendall(b"0\r\n\r\n")


MODES = {"pieces": in_pieces, "two segments": in_two, "chunked": chunked, "over by length": over_by_length,
         "over chunked": over_chunked}  # fmt: skip
WHOLE_MODES = ("pieces", "two segments", "chunked")
OVER_MODES = ("over by length", "over chunked")


def read_reply(s: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        more = s.recv(65536)
        assert more, f"the connection closed before a reply: {data!r}"
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        more = s.recv(65536)
        assert more, "the connection closed inside the reply"
        rest += more
    return Reply(int(status_line.split()[1]), headers, rest[:length])


# -- every body-taking route, with a body that succeeds -------------------------------------------

ZONE = "bodies.test."


def json_body(obj) -> tuple[bytes, str]:
    return orjson.dumps(obj), "application/json"


def zone_file(origin: str, hosts: int, serial: int = 1) -> str:
    lines = [f"$ORIGIN {origin}", "$TTL 300", f"@ IN SOA ns1.{origin} hostmaster.{origin} {serial} 3600 600 86400 300",
             f"@ IN NS ns1.{origin}", "ns1 IN A 192.0.2.53"]  # fmt: skip
    lines += [f"h{i} IN A 10.1.{i // 250}.{i % 250 + 1}" for i in range(hosts)]
    return "\n".join(lines) + "\n"


class World:
    """What the routes act on, made through the API before the bodies are sent."""

    def __init__(self, api):
        self.api = api
        self.made = 0  # zones made through make_zone
        self.pool: str | None = None
        for project in ("admin-project", "alice"):  # the cases make more zones than the default quota (10)
            assert api.patch(f"/v2/quotas/{project}", json={"zones": 1000}).status_code == 200
        for tld in ("test", "arpa"):  # TLDs made by a case below restrict zone names: these stay allowed
            assert api.post("/v2/tlds", json={"name": tld}).status_code == 201
        self.zone = self.make_zone(ZONE)
        r = api.post(f"/v2/zones/{self.zone}/recordsets", json={"name": f"rs.{ZONE}", "type": "A", "records": ["10.0.0.1"]})
        assert r.status_code in (201, 202), r.text
        self.recordset = r.json()["id"]
        self.tsigkey = self.ok(api.post("/v2/tsigkeys", json=self.tsig("bodies-key")))["id"]
        self.tld = self.ok(api.post("/v2/tlds", json={"name": "bodies-tld"}))["id"]
        self.blacklist = self.ok(api.post("/v2/blacklists", json={"pattern": r"^never\.example\.$"}))["id"]
        self.make_zone("2.0.192.in-addr.arpa.")
        self.fip = f"RegionOne:{uuid.uuid4()}"
        self.ok(api.post("/v2/reverse/floatingips", json=self.fip_body(self.fip, "192.0.2.10")))
        make_zones(api.database_url, ["cloud.test.", "0.0.10.in-addr.arpa."])

    def make_zone(self, name: str, token: str = ADMIN) -> str:
        r = self.api.post("/v2/zones", json={"name": name, "email": f"hostmaster@{name.rstrip('.')}"}, token=token)
        assert r.status_code == 202, r.text
        self.made += 1
        return r.json()["id"]

    def transfer_request(self, name: str, token: str = ADMIN, target: str | None = "alice") -> dict:
        zid = self.make_zone(name, token)
        return self.ok(self.api.post(f"/v2/zones/{zid}/tasks/transfer_requests", json={"target_project_id": target},
                                     token=token))  # fmt: skip

    def other_pool(self) -> str:
        if self.pool is None:
            made = db_run(self.api.database_url, lambda store: pools.create_pool(
                store, "bodies-pool", pools.check_ns_records(["ns1.bodies-pool.test."])))  # fmt: skip
            self.pool = str(made["id"])
        return self.pool

    def signed_zone(self, name: str) -> str:
        zid = self.make_zone(name)
        self.ok(self.api.post(f"/v2/zones/{zid}/dnssec", json={"algorithm": "ed25519", "split": True}))
        return zid

    @staticmethod
    def ok(r) -> dict:
        assert 200 <= r.status_code < 300, r.text
        return r.json()

    @staticmethod
    def tsig(name: str) -> dict:
        return {"name": name, "algorithm": "hmac-sha256", "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
                "scope": "POOL", "resource_id": "794ccc2c-d751-44fe-b57f-8894c9f5c842"}  # fmt: skip

    @staticmethod
    def fip_body(key: str, address: str) -> dict:
        region, fid = key.split(":")
        return {"region": region, "id": fid, "address": address, "project_id": "admin-project"}


def _import(w: World, i: int):
    return f"/v2/zones/tasks/imports", zone_file(f"imported{i}.test.", 30).encode(), "text/dns"


def _rollover(w: World, i: int):
    return f"/v2/zones/{w.signed_zone(f'roll{i}.test.')}/dnssec/rollover", *json_body({"key": "zsk"})


def _ds_seen(w: World, i: int):
    zid = w.signed_zone(f"ds{i}.test.")
    w.ok(w.api.post(f"/v2/zones/{zid}/dnssec/rollover", json={"key": "ksk"}))
    return f"/v2/zones/{zid}/dnssec/ds-seen", b"{" + b" " * 40 + b"}", "application/json"


def _event(w: World, i: int):
    return "/v1/events", *json_body(fresh(load("nova_compute.instance.create.end.json")))


def _accept(w: World, i: int):
    offered = w.transfer_request(f"accept{i}.test.", ALICE, "admin-project")  # accepted by ADMIN's project
    body = {"key": offered["key"], "zone_transfer_request_id": offered["id"]}
    return "/v2/zones/tasks/transfer_accepts", *json_body(body)


# (method, route) → (world, i) → (path, body, content type); each call a body that succeeds.
CASES = {
    ("POST", "/v2/zones"): lambda w, i: ("/v2/zones", *json_body({"name": f"z{i}.test.", "email": "h@z.test",
                                                                   "description": "x" * 50})),
    ("PATCH", "/v2/zones/{zone_id}"): lambda w, i: (f"/v2/zones/{w.zone}", *json_body({"ttl": 600 + i, "description": "d" * 50})),
    ("POST", "/v2/zones/{zone_id}/recordsets"): lambda w, i: (
        f"/v2/zones/{w.zone}/recordsets", *json_body({"name": f"r{i}.{ZONE}", "type": "A", "records": ["10.0.0.2", "10.0.0.3"]})),
    ("PUT", "/v2/zones/{zone_id}/recordsets/{recordset_id}"): lambda w, i: (
        f"/v2/zones/{w.zone}/recordsets/{w.recordset}", *json_body({"records": [f"10.0.1.{i + 1}"], "ttl": 300})),
    ("POST", "/v2/zones/tasks/imports"): _import,
    ("POST", "/v2/tsigkeys"): lambda w, i: ("/v2/tsigkeys", *json_body(w.tsig(f"key-{i}"))),
    ("PATCH", "/v2/tsigkeys/{tsigkey_id}"): lambda w, i: (f"/v2/tsigkeys/{w.tsigkey}", *json_body({"name": f"renamed-{i}"})),
    ("POST", "/v2/minidns/update_grants"): lambda w, i: ("/v2/minidns/update_grants", *json_body(
        {"key": f"key-{i}.", "zone": ZONE, "match": "subdomain", "pattern": f"dyn.{ZONE}", "types": ["A", "TXT"],
         "description": "g" * 40})),
    ("POST", "/v2/tlds"): lambda w, i: ("/v2/tlds", *json_body({"name": f"tld{i}", "description": "t" * 40})),
    ("PATCH", "/v2/tlds/{tld_id}"): lambda w, i: (f"/v2/tlds/{w.tld}", *json_body({"description": f"described {i}" * 5})),
    ("POST", "/v2/blacklists"): lambda w, i: ("/v2/blacklists", *json_body({"pattern": rf"^blocked{i}\.example\.$"})),
    ("PATCH", "/v2/blacklists/{blacklist_id}"): lambda w, i: (
        f"/v2/blacklists/{w.blacklist}", *json_body({"description": f"described {i}" * 5})),
    ("PATCH", "/v2/quotas/{project_id}"): lambda w, i: ("/v2/quotas/alice", *json_body({"zones": 1000 + i, "zone_records": 5000})),
    ("PATCH", "/v2/reverse/floatingips/{fip_key}"): lambda w, i: (
        f"/v2/reverse/floatingips/{w.fip}", *json_body({"ptrdname": f"vm{i}.example.com.", "ttl": 600})),
    ("POST", "/v2/reverse/floatingips"): lambda w, i: (
        "/v2/reverse/floatingips", *json_body(w.fip_body(f"RegionOne:{uuid.uuid4()}", f"192.0.2.{100 + i}"))),
    ("POST", "/v1/events"): _event,
    ("POST", "/v1/reconcile"): lambda w, i: ("/v1/reconcile", *json_body({"source": "cloudstack", "resource_ids": [],
                                                                          "dry_run": True})),
    ("POST", "/v2/zones/{zone_id}/dnssec"): lambda w, i: (
        f"/v2/zones/{w.make_zone(f'sign{i}.test.')}/dnssec", *json_body({"algorithm": "ed25519", "nsec3_opt_out": False})),
    ("POST", "/v2/zones/{zone_id}/dnssec/rollover"): _rollover,
    ("POST", "/v2/zones/{zone_id}/dnssec/ds-seen"): _ds_seen,
    ("POST", "/v2/zones/{zone_id}/tasks/transfer_requests"): lambda w, i: (
        f"/v2/zones/{w.make_zone(f'offer{i}.test.')}/tasks/transfer_requests",
        *json_body({"target_project_id": "alice", "description": "o" * 40})),
    ("PATCH", "/v2/zones/tasks/transfer_requests/{transfer_request_id}"): lambda w, i: (
        f"/v2/zones/tasks/transfer_requests/{w.transfer_request(f'offered{i}.test.')['id']}",
        *json_body({"description": "d" * 60})),
    ("POST", "/v2/zones/tasks/transfer_accepts"): _accept,
    ("POST", "/v2/zones/{zone_id}/shares"): lambda w, i: (
        f"/v2/zones/{w.zone}/shares", *json_body({"target_project_id": f"project-{i}-{'p' * 30}"})),
    ("POST", "/v2/zones/{zone_id}/tasks/pool_move"): lambda w, i: (
        f"/v2/zones/{w.make_zone(f'moved{i}.test.')}/tasks/pool_move", *json_body({"pool_id": w.other_pool()})),
}
# POST routes that take no body (whatever is sent is not read).
NO_BODY = {("POST", "/v2/zones/{zone_id}/tasks/export"), ("POST", "/v2/zones/{zone_id}/tasks/abandon"),
           ("POST", "/v2/zones/{zone_id}/tasks/xfr")}


def body_routes() -> dict:
    """(method, path) → handler of every POST/PUT/PATCH route of the API."""
    return {(r.method, r.path): r.handler for m in route_modules() for r in m.routes if r.method in BODY_METHODS}


def test_every_body_taking_route_is_covered_and_reads_through_read_body():
    routes = body_routes()
    missing = set(routes) - set(CASES) - NO_BODY
    assert not missing, f"give these routes a case in CASES (or NO_BODY when they take no body): {sorted(missing)}"
    assert not set(CASES) - set(routes), f"cases for routes that are gone: {sorted(set(CASES) - set(routes))}"
    for key in NO_BODY:
        source = inspect.getsource(routes[key])
        assert not any(reader in source for reader in READERS), f"{key} reads a body: give it a case in CASES"
    # One reader: nothing in minidns/admin but common.read_body touches the request's stream.
    admin = Path(route_modules()[0].__file__).parent
    for path in admin.glob("*.py"):
        text = path.read_text()
        if path.name != "common.py":
            found = re.findall(r"request\.(?:content\b|read\(|text\(|json\(|post\()", text)
            assert not found, f"{path.name} reads the body itself ({found}): use common.read_body / read_json"


@pytest.fixture
def api_config(api_config, tmp_path):
    """Events (the sink's zones) and a DNSSEC master key, so that every route can succeed."""
    key = tmp_path / "master.key"
    key.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    key.chmod(0o600)
    with open(api_config, "a") as f:
        f.write(EVENTS_CONFIG + f'dnssec_master_key_file = "{key}"\n')
    return api_config


@pytest.mark.parametrize("mode", WHOLE_MODES)
def test_every_route_reads_a_body_that_arrives_in_pieces_whole(api, mode):
    world, raw = World(api), Raw(api)
    for i, (key, case) in enumerate(sorted(CASES.items())):
        path, body, ctype = case(world, i)
        r = raw.send(key[0], path, body, mode, ctype)
        assert 200 <= r.status < 300, (key, mode, r.status, r.body)


@pytest.mark.parametrize("mode", OVER_MODES)
def test_every_route_refuses_a_body_over_its_bound_with_413(api, mode):
    world, raw = World(api), Raw(api)
    made_before = world.made
    zones = api.get("/v2/zones?limit=1000", headers={"X-Auth-All-Projects": "true"}).json()["metadata"]["total_count"]
    for i, (key, case) in enumerate(sorted(CASES.items())):
        path, _, ctype = case(world, i)
        r = raw.send(key[0], path, b"", mode, ctype)
        assert r.status == 413 and r.headers["content-type"].startswith("application/json"), (key, mode, r.status, r.body)
        body = r.json()
        assert set(body) == {"code", "type", "message", "request_id"}, body
        assert (body["code"], body["type"]) == (413, "request_too_large") and "larger than" in body["message"], body
    made = world.made - made_before  # the zones the cases made to act on
    assert api.get("/v2/zones?limit=1000", headers={"X-Auth-All-Projects": "true"}).json()["metadata"]["total_count"] \
        == zones + made


# -- the effect is whole ----------------------------------------------------------------------------


def served_records(api, origin: str) -> int:
    """The records of the zone as AXFR from the DNS port gives them (SOA once), once it is served
    (a committed zone reaches the server through the change feed, in ms)."""
    api.wait_dns(origin, "SOA", lambda r: any(rrset.rdtype == dns.rdatatype.SOA for rrset in r.answer))
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", origin, port=api.dns_port, timeout=10, lifetime=30))
    return sum(len(rds) for _, rds in z.iterate_rdatasets())


def file_records(text: str, origin: str) -> int:
    z = dns.zone.from_text(text, origin)
    return sum(len(rds) for _, rds in z.iterate_rdatasets())


def wait_task(api, task: dict) -> dict:
    while task["status"] == "PENDING":
        time.sleep(0.05)
        task = api.get(f"/v2/zones/tasks/imports/{task['id']}").json()
    return task


@pytest.mark.parametrize("mode", WHOLE_MODES)
def test_a_zone_import_in_pieces_imports_and_serves_every_record(api, mode):
    origin = "pieces.test."
    text = zone_file(origin, 110)
    assert text.count("\n") >= 105 and len(text) > 1460  # more than one TCP segment of an Ethernet path
    r = Raw(api).send("POST", "/v2/zones/tasks/imports", text.encode(), mode, "text/dns")
    assert r.status == 202, r.body
    task = wait_task(api, r.json())
    assert task["status"] == "COMPLETE", task
    assert served_records(api, origin) == file_records(text, origin) == 110 + 3
    rrsets = api.get(f"/v2/zones/{task['zone_id']}/recordsets?limit=1000").json()["recordsets"]
    assert len([x for x in rrsets if x["type"] == "A"]) == 111


@pytest.mark.parametrize("mode", WHOLE_MODES)
def test_a_json_post_in_pieces_creates_exactly_what_it_says(api, mode):
    zid = api.post("/v2/zones", json={"name": ZONE, "email": f"hostmaster@{ZONE.rstrip('.')}"}).json()["id"]
    records = [f"10.9.0.{i}" for i in range(1, 16)]
    body = orjson.dumps({"name": f"many.{ZONE}", "type": "A", "records": records, "ttl": 1234, "description": "z" * 150})
    r = Raw(api).send("POST", f"/v2/zones/{zid}/recordsets", body, mode)
    assert r.status == 202, r.body
    got = r.json()
    assert (sorted(got["records"]), got["ttl"], got["description"]) == (sorted(records), 1234, "z" * 150)
    api.wait_dns(f"many.{ZONE}", "A", answers(f"many.{ZONE}", "A", set(records)))


@pytest.fixture
def sink(api_config, database_url, request):
    make_zones(database_url, ["cloud.test.", "0.0.10.in-addr.arpa.", "0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa."])
    return request.getfixturevalue("api")


@pytest.mark.parametrize("mode", WHOLE_MODES)
def test_an_event_in_pieces_applies(sink, mode):
    event = fresh(load("nova_compute.instance.create.end.json"))
    r = Raw(sink).send("POST", "/v1/events", orjson.dumps(event), mode, token=INGEST)
    assert r.status == 200 and r.json()["status"] == "applied", r.body
    sink.wait_dns("web1.cloud.test.", "A", answers("web1.cloud.test.", "A", {"10.0.0.5"}))
    assert sink.get(f"/v1/events/{event['message_id']}").json()["status"] == "applied"


def test_a_body_cut_off_by_the_client_stores_nothing(api):
    """A zone file whose first half is itself a valid zone: read only as far as it had arrived, it
    would have been imported half. The client closes midway; then sends it whole."""
    origin = "cut.test."
    text = zone_file(origin, 110).encode()
    half = text[: text.index(b"\nh60 ") + 1]
    raw = Raw(api)
    with raw.connect() as s:
        s.sendall(framed(raw.head("POST", "/v2/zones/tasks/imports", "text/dns"), f"Content-Length: {len(text)}") + half)
        time.sleep(0.3)  # the first half is with the server
    body = orjson.dumps({"name": f"cut.{ZONE}", "email": "h@cut.test"})
    with raw.connect() as s:
        s.sendall(framed(raw.head("POST", "/v2/zones", "application/json"), f"Content-Length: {len(body)}") + body[:20])
        time.sleep(0.3)
    r = raw.send("POST", "/v2/zones/tasks/imports", text, "pieces", "text/dns")
    assert r.status == 202, r.body
    assert wait_task(api, r.json())["status"] == "COMPLETE"
    tasks = api.get("/v2/zones/tasks/imports").json()["imports"]
    assert [t["status"] for t in tasks] == ["COMPLETE"], tasks
    assert [z["name"] for z in api.get("/v2/zones").json()["zones"]] == [origin]
    assert served_records(api, origin) == 113


def test_a_bad_chunk_is_refused_and_stores_nothing(api):
    """A chunk size that is not hexadecimal (RFC 9112 §7.1): aiohttp's parser refuses it itself
    (400, with its own plain-text body) before any handler sees the request."""
    raw = Raw(api)
    with raw.connect() as s:
        s.sendall(framed(raw.head("POST", "/v2/zones", "application/json"), "Transfer-Encoding: chunked")
                  + b"5\r\n{\"nam\r\nzz\r\n")  # fmt: skip
        r = read_reply(s)
    assert r.status == 400, r
    assert api.get("/v2/zones").json()["zones"] == []
