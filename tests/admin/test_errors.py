"""admin/errors.py, the one place where exceptions become HTTP responses: the table of each domain
error and the status, Designate type, message and headers it is answered with; then requests to a
real `minidns serve` that make the services raise each kind deep down, each coming out as
Designate's JSON body {code, type, message, request_id}; and a real aiohttp server with the
middleware: a bug answers 500 with the body and a log line, a cancelled handler is not answered."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import ALICE, BOB, INGEST
from v2util import error, make_rrset, make_zone

from minidns.admin.common import ApiError
from minidns.admin.errors import BUSY, domain_reply, request_id_and_errors
from minidns.dnssec.keys import BadKey
from minidns.services.access import DuplicateTsigKey, TsigKeyInUse, TsigKeyNotFound
from minidns.services.dnssec import DnssecEnabled, DnssecNotEnabled
from minidns.store.keys import MasterKeyError
from minidns.sink.outcome import BadEvent, Unavailable
from minidns.services.floatingips import BadFloatingIpKey, FloatingIpNotFound, NoReverseZone
from minidns.services.policy import (BlacklistNotFound, DuplicateBlacklist, DuplicateTld, OverQuota, PolicyError,
                                  TldNotFound, ZoneNameRefused)  # fmt: skip
from minidns.services.pools import PoolNotFound
from minidns.store.records import Invalid
from minidns.services.listing import MarkerNotFound
from minidns.services.zones import DuplicateZone, Forbidden, Refused, ZoneNotFound
from minidns.services.recordsets import BadPlacement, DuplicateRecordSet, RecordSetNotFound
from minidns.services.rollover import RolloverInProgress
from minidns.services.shares import DuplicateSharedZone, SharedZoneNotFound, ShareRefused
from minidns.services.tasks import TaskNotFound
from minidns.services.transfers import (DuplicateTransferRequest, IncorrectKey, InvalidTransfer, TransferAcceptNotFound,
                                     TransferRefused, TransferRequestNotFound)  # fmt: skip
from minidns.store.writer import Conflict, NotFound, Unsignable

POOL = uuid.UUID("00000000-0000-0000-0000-0000000000aa")

# (the error, its status, Designate type, message, headers)
TABLE = [
    (NotFound("no zone x."), 404, "not_found", "no zone x.", {}),
    (Conflict("pool p exists"), 409, "conflict", "pool p exists", {}),
    (Invalid("no records to create"), 400, "invalid_object", "no records to create", {}),
    (DuplicateZone("zone x. exists"), 409, "duplicate_zone", "Duplicate Zone: zone x. exists", {}),
    (Unsignable("no master key"), 503, "service_unavailable", "no master key", {"Retry-After": "60"}),
    (ZoneNotFound("Could not find Zone"), 404, "zone_not_found", "Could not find Zone", {}),
    (RecordSetNotFound("Could not find RecordSet"), 404, "recordset_not_found", "Could not find RecordSet", {}),
    (DuplicateRecordSet("Duplicate RecordSet"), 409, "duplicate_recordset", "Duplicate RecordSet", {}),
    (BadPlacement("CNAME at the apex"), 400, "invalid_recordset_location", "CNAME at the apex", {}),
    (Refused("Creating a SOA recordset is not allowed"), 400, "bad_request", "Creating a SOA recordset is not allowed", {}),
    (Forbidden("another tenant's zone"), 403, "forbidden", "another tenant's zone", {}),
    (MarkerNotFound("Marker m could not be found"), 400, "invalid_marker", "Marker m could not be found", {}),
    (TaskNotFound("Could not find ZoneImport t", "IMPORT"), 404, "zone_import_not_found", "Could not find ZoneImport t", {}),
    (TaskNotFound("Could not find ZoneExport t", "EXPORT"), 404, "zone_export_not_found", "Could not find ZoneExport t", {}),
    (SharedZoneNotFound("s"), 404, "shared_zone_not_found", "s", {}),
    (DuplicateSharedZone("s"), 409, "duplicate_shared_zone", "s", {}),
    (ShareRefused("with the owner"), 400, "bad_request", "with the owner", {}),
    (ShareRefused("shared", "zone_is_shared"), 400, "zone_is_shared", "shared", {}),
    (TransferRequestNotFound("t"), 404, "zone_transfer_request_not_found", "t", {}),
    (TransferAcceptNotFound("t"), 404, "zone_transfer_accept_not_found", "t", {}),
    (DuplicateTransferRequest("t"), 409, "duplicate_zone_transfer_request", "t", {}),
    (IncorrectKey("k"), 403, "invalid_key", "k", {}),
    (InvalidTransfer("used"), 400, "invalid_zone_transfer_request", "used", {}),
    (TransferRefused("deleting"), 400, "bad_request", "deleting", {}),
    (PolicyError("refused"), 400, "bad_request", "refused", {}),
    (ZoneNameRefused("Blacklisted zone name: x."), 400, "invalid_zone_name", "Blacklisted zone name: x.", {}),
    (OverQuota("zones: 10"), 413, "over_quota", "zones: 10", {}),
    (TldNotFound("no TLD t"), 404, "tld_not_found", "no TLD t", {}),
    (DuplicateTld("TLD com exists"), 409, "duplicate_tld", "TLD com exists", {}),
    (BlacklistNotFound("no blacklist b"), 404, "blacklist_not_found", "no blacklist b", {}),
    (DuplicateBlacklist("blacklist b exists"), 409, "duplicate_blacklist", "blacklist b exists", {}),
    (TsigKeyNotFound("no TSIG key k"), 404, "tsigkey_not_found", "no TSIG key k", {}),
    (DuplicateTsigKey("TSIG key k exists"), 409, "duplicate_tsigkey", "TSIG key k exists", {}),
    (TsigKeyInUse("TSIG key k is used"), 409, "duplicate_tsigkey", "TSIG key k is used", {}),
    (FloatingIpNotFound("f"), 404, "floatingip_not_found", "f", {}),
    (NoReverseZone("no reverse zone"), 400, "bad_request", "no reverse zone", {}),
    (BadFloatingIpKey("not region:uuid"), 400, "bad_request", "not region:uuid", {}),
    (PoolNotFound(POOL), 404, "pool_not_found", f"Could not find Pool {POOL}", {}),
    (DnssecEnabled("signed already"), 409, "dnssec_enabled", "signed already", {}),
    (DnssecNotEnabled("not signed"), 404, "dnssec_not_enabled", "not signed", {}),
    (RolloverInProgress("running"), 409, "rollover_in_progress", "running", {}),
    (BadKey("damaged"), 503, "dnssec_unavailable", "damaged", {}),
    (MasterKeyError("not this database's"), 503, "dnssec_unavailable", "not this database's", {}),
    (BadEvent("no message_id"), 400, "invalid_event", "no message_id", {}),
    (Unavailable("away"), 503, "service_unavailable", "away", {"Retry-After": "5"}),
    (ApiError(429, "too_many", "slow down", {"Retry-After": "1"}), 429, "too_many", "slow down", {"Retry-After": "1"}),
]


@pytest.mark.parametrize("e, status, kind, message, headers", TABLE, ids=[type(row[0]).__name__ for row in TABLE])
def test_a_domain_error_carries_its_status_type_and_message(e, status, kind, message, headers):
    assert domain_reply(e) == (status, kind, message, headers)


@pytest.mark.parametrize("e", [ValueError("x"), KeyError("status"), RuntimeError(), OSError(5, "EIO")])
def test_any_other_exception_carries_nothing(e):
    assert domain_reply(e) is None


# -- through a real server ------------------------------------------------------------------------


@pytest.fixture
def api_config(api_config, tmp_path):
    """The server's configuration with a DNSSEC master key file (for the signing errors)."""
    key = tmp_path / "master.key"
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    key.chmod(0o600)
    with open(api_config, "a") as f:
        f.write(f'dnssec_master_key_file = "{key}"\n')
    return api_config


def answered(r, status: int, kind: str) -> dict:
    """Designate's error body, its request id the one of the reply's header."""
    body = error(r, status, kind)
    assert body["request_id"] == r.headers["X-Openstack-Request-Id"] and body["message"], body
    return body


def test_errors_raised_deep_in_the_services_come_out_as_designate_bodies(api):
    z = make_zone(api, "errors.test.", ALICE)
    zone, missing = f"/v2/zones/{z['id']}", uuid.uuid4()
    assert answered(api.post("/v2/zones", json={"name": "errors.test.", "email": "h@errors.test"}, token=ALICE),
                    409, "duplicate_zone")["message"] == "Duplicate Zone: zone errors.test. exists"  # fmt: skip
    answered(api.get(f"/v2/zones/{missing}", token=ALICE), 404, "zone_not_found")
    answered(api.get("/v2/zones?marker=" + str(missing), token=ALICE), 400, "invalid_marker")
    answered(api.post("/v2/zones", json={"name": "sub.errors.test.", "email": "h@errors.test"}, token=BOB), 403, "forbidden")
    _recordset_errors(api, zone)
    answered(api.get(f"/v2/zones/tasks/imports/{missing}", token=ALICE), 404, "zone_import_not_found")
    answered(api.get(f"/v2/zones/tasks/exports/{missing}", token=ALICE), 404, "zone_export_not_found")
    _share_and_transfer_errors(api, zone)
    _dnssec_errors(api, zone)
    _admin_resource_errors(api)
    _policy_errors(api)


def _recordset_errors(api, zone: str) -> None:
    make_rrset(api, zone.rsplit("/", 1)[1], "www.errors.test.", "A", ["192.0.2.1"], ALICE)
    create = f"{zone}/recordsets"
    answered(api.post(create, json={"name": "www.errors.test.", "type": "A", "records": ["192.0.2.2"]}, token=ALICE),
             409, "duplicate_recordset")  # fmt: skip
    answered(api.post(create, json={"name": "www.other.test.", "type": "A", "records": ["192.0.2.2"]}, token=ALICE),
             400, "invalid_recordset_location")  # fmt: skip
    answered(api.post(create, json={"name": "x.errors.test.", "type": "A", "records": ["nowhere"]}, token=ALICE),
             400, "invalid_object")  # fmt: skip
    answered(api.post(create, json={"name": "errors.test.", "type": "SOA", "records": ["a. b. 1 2 3 4 5"]}, token=ALICE),
             400, "bad_request")  # fmt: skip
    answered(api.get(f"{create}/{uuid.uuid4()}", token=ALICE), 404, "recordset_not_found")


def _share_and_transfer_errors(api, zone: str) -> None:
    shares = f"{zone}/shares"
    answered(api.post(shares, json={"target_project_id": "alice"}, token=ALICE), 400, "bad_request")
    assert api.post(shares, json={"target_project_id": "bob"}, token=ALICE).status_code == 201
    answered(api.post(shares, json={"target_project_id": "bob"}, token=ALICE), 409, "duplicate_shared_zone")
    answered(api.get(f"{shares}/{uuid.uuid4()}", token=ALICE), 404, "shared_zone_not_found")
    answered(api.delete(zone, token=ALICE), 400, "zone_is_shared")
    requests = "/v2/zones/tasks/transfer_requests"
    answered(api.get(f"{requests}/{uuid.uuid4()}", token=ALICE), 404, "zone_transfer_request_not_found")
    r = api.post(f"{zone}/tasks/transfer_requests", json={"target_project_id": "bob"}, token=ALICE)
    assert r.status_code == 201, r.text
    t = r.json()
    accept = {"zone_transfer_request_id": t["id"], "key": "AAAAAAAA"}
    answered(api.post("/v2/zones/tasks/transfer_accepts", json=accept, token=BOB), 403, "invalid_key")
    answered(api.get(f"/v2/zones/tasks/transfer_accepts/{uuid.uuid4()}", token=BOB), 404, "zone_transfer_accept_not_found")


def _dnssec_errors(api, zone: str) -> None:
    dnssec = f"{zone}/dnssec"
    answered(api.delete(dnssec, token=ALICE), 404, "dnssec_not_enabled")
    assert api.post(dnssec, json={"split": True}, token=ALICE).status_code == 201
    answered(api.post(dnssec, json={}, token=ALICE), 409, "dnssec_enabled")
    assert api.post(f"{dnssec}/rollover", json={"key": "zsk"}, token=ALICE).status_code == 202
    answered(api.post(f"{dnssec}/rollover", json={"key": "zsk"}, token=ALICE), 409, "rollover_in_progress")
    answered(api.post(f"{dnssec}/ds-seen", json={}, token=ALICE), 400, "invalid_object")


def _admin_resource_errors(api) -> None:
    key = {"name": "k1", "algorithm": "hmac-sha256", "secret": "c2VjcmV0", "scope": "POOL", "resource_id": str(POOL)}
    assert api.post("/v2/tsigkeys", json=key).status_code == 201
    answered(api.post("/v2/tsigkeys", json=key), 409, "duplicate_tsigkey")
    answered(api.get(f"/v2/tsigkeys/{uuid.uuid4()}"), 404, "tsigkey_not_found")
    assert api.post("/v2/blacklists", json={"pattern": "^bad\\."}).status_code == 201
    answered(api.post("/v2/blacklists", json={"pattern": "^bad\\."}), 409, "duplicate_blacklist")
    answered(api.get(f"/v2/blacklists/{uuid.uuid4()}"), 404, "blacklist_not_found")
    answered(api.post("/v2/zones", json={"name": "bad.test.", "email": "h@bad.test"}, token=ALICE), 400, "invalid_zone_name")
    assert answered(api.get(f"/v2/pools/{POOL}"), 404, "pool_not_found")["message"] == f"Could not find Pool {POOL}"
    fips = "/v2/reverse/floatingips"
    answered(api.get(f"{fips}/nope", token=ALICE), 400, "bad_request")
    answered(api.get(f"{fips}/RegionOne:{uuid.uuid4()}", token=ALICE), 404, "floatingip_not_found")
    fip = {"region": "RegionOne", "id": str(uuid.uuid4()), "address": "198.51.100.7", "project_id": "alice"}
    assert api.post(fips, json=fip).status_code == 201
    r = api.patch(f"{fips}/RegionOne:{fip['id']}", json={"ptrdname": "vm.errors.test."}, token=ALICE)
    assert "reverse zone" in answered(r, 400, "bad_request")["message"]
    answered(api.post("/v1/events", json={"event_type": "compute.instance.create.end", "payload": {}}, token=INGEST),
             400, "invalid_event")  # fmt: skip


def _policy_errors(api) -> None:
    assert api.patch("/v2/quotas/bob", json={"zones": 0}).status_code == 200
    answered(api.post("/v2/zones", json={"name": "more.test.", "email": "h@more.test"}, token=BOB), 413, "over_quota")
    assert api.post("/v2/tlds", json={"name": "test"}).status_code == 201
    answered(api.post("/v2/tlds", json={"name": "test"}), 409, "duplicate_tld")
    answered(api.get(f"/v2/tlds/{uuid.uuid4()}"), 404, "tld_not_found")
    answered(api.post("/v2/zones", json={"name": "x.example.", "email": "h@x.example"}, token=ALICE), 400, "invalid_zone_name")


# -- the middleware on a real aiohttp server ------------------------------------------------------


async def _served(handler) -> TestClient:
    app = web.Application(middlewares=[request_id_and_errors])
    app[BUSY] = [0, 8]
    app.router.add_get("/", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_bug_answers_500_with_the_body_and_a_log_line(caplog):
    async def broken(request):
        return {}["missing"]

    client = await _served(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="minidns.api"):
            r = await client.get("/")
            body = await r.json()
    finally:
        await client.close()
    assert r.status == 500 and body == {"code": 500, "type": "internal_error", "message": "internal error; see the log",
                                        "request_id": r.headers["X-Openstack-Request-Id"]}  # fmt: skip
    (record,) = [rec for rec in caplog.records if rec.name == "minidns.api" and rec.levelno == logging.ERROR]
    assert record.getMessage() == f"{body['request_id']} GET / failed" and record.exc_info[0] is KeyError


async def test_a_cancelled_handler_is_not_answered():
    async def cancelled(request):
        raise asyncio.CancelledError()

    client = await _served(cancelled)
    try:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await client.get("/")
    finally:
        await client.close()
