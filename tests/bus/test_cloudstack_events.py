"""CloudStack's event-bus messages completed from the API (minidns/bus/cloudstack_events.py), against
the stand-in API that checks signatures: the real message bodies (tests/sink/payloads/cloudstack_bus_*)
become the events the sink reads; events that carry the details, and those that need none, are left
alone; accounts and domains are asked once per burst; what cannot be found is said; an unreachable
API is raised, and nothing of it is kept."""

import copy
import json
from pathlib import Path

import pytest
from cloudstack_standin import API_KEY, SECRET_KEY, CloudStackStandIn, recorded

from minidns.bus.cloudstack_api import CloudStackAPI
from minidns.bus.cloudstack_events import CONCURRENCY, ROUTING_KEYS, Directory, enrich, routing_key
from minidns.bus.message import Unreachable
from minidns.sink import cloudstack
from minidns.sink.outcome import BadEvent

PAYLOADS = Path(__file__).parent.parent / "sink" / "payloads"
EVENTS = Path(__file__).parent.parent / "admin" / "events"
VM = "8a1a4f5c-5cf0-4b4f-9d59-5cfb1d1e0a11"
ACCOUNT = "e2c7ad16-7b1a-4a51-9f1b-3f3b8a9e5d70"
ADMIN = "77aa77aa-0000-4000-8000-00000000000b"


def bus(event: str, **changes) -> dict:
    return {**json.loads((PAYLOADS / f"cloudstack_bus_{event}.json").read_bytes()), **changes}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def standin():
    s = CloudStackStandIn()
    s.accounts[ADMIN] = {**s.accounts[ACCOUNT], "id": ADMIN, "name": "admin", "networkdomain": "admin.test"}
    s.start()
    yield s
    s.close()


@pytest.fixture
async def directory(standin):
    standin.calls.clear()
    api = CloudStackAPI(standin.url, API_KEY, SECRET_KEY, timeout=1, attempts=2, retry_delay=0.05)
    yield Directory(api, ttl=30, clock=Clock())
    await api.close()


def test_the_routing_keys_bound():
    assert ROUTING_KEYS == ("management-server.ActionEvent.VM-CREATE.VirtualMachine.*",
                            "management-server.ActionEvent.VM-START.VirtualMachine.*",
                            "management-server.ActionEvent.VM-DESTROY.VirtualMachine.*",
                            "management-server.ActionEvent.VM-EXPUNGE.VirtualMachine.*")  # fmt: skip
    assert routing_key("VM.CREATE", VM) == f"management-server.ActionEvent.VM-CREATE.VirtualMachine.{VM}"


async def test_a_bus_message_becomes_the_event_the_sink_reads(standin, directory):
    create, start = bus("VM.CREATE"), bus("VM.START")
    out = await enrich(directory, [create, start, bus("VM.DESTROY"), bus("VM.EXPUNGE"), "not an object"])
    assert out[0] == {**create, "vm": recorded("listVirtualMachines")["virtualmachine"][0],
                      "account_details": {"id": ACCOUNT, "name": "shop", "networkdomain": "acct.test"},
                      "domain_details": {"id": "0b8c3fa4-0e3c-11ee-8b0c-0242ac120002", "name": "customers",
                                         "networkdomain": "dom.test"}}  # fmt: skip
    assert out[1] == {**start, **{k: out[0][k] for k in ("vm", "account_details", "domain_details")}}
    assert out[2:] == [bus("VM.DESTROY"), bus("VM.EXPUNGE"), "not an object"]  # nothing to ask for these
    # what the sink then reads: the VM as the HTTP fixture describes it
    fixture = json.loads((EVENTS / "cloudstack_VM.CREATE.json").read_text())
    assert cloudstack.vm(out[0], cloudstack.notice(out[0])) == cloudstack.vm(fixture, cloudstack.notice(fixture))
    # one VM lookup per event; the account and its domain once for both
    assert standin.calls == {"listVirtualMachines": 2, "listAccounts": 1, "listDomains": 1}


async def test_events_that_need_no_lookup_are_left_alone(standin, directory):
    http = json.loads((EVENTS / "cloudstack_VM.CREATE.json").read_text())  # today's HTTP shape, details included
    events = [http, bus("VM.CREATE", status="Scheduled"), bus("VM.CREATE", status="Started"), {**bus("VM.START"), "event": "VM.STOP"},
              {k: v for k, v in bus("VM.CREATE").items() if k not in ("entityuuid", "VirtualMachine")}]  # fmt: skip
    assert await enrich(directory, copy.deepcopy(events)) == events
    assert standin.calls == {}


async def test_a_burst_asks_for_the_account_once_until_the_cache_expires(standin, directory):
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(20)]
    for i, vid in enumerate(ids):
        standin.add_vm(vid, f"web{i}", (f"10.1.1.{100 + i}", f"2001:db8:1::{100 + i:x}"))
    burst = [bus("VM.START", entityuuid=vid, VirtualMachine=vid) for vid in ids]
    out = await enrich(directory, burst)
    assert [e["vm"]["name"] for e in out] == [f"web{i}" for i in range(20)]
    assert standin.calls == {"listVirtualMachines": 20, "listAccounts": 1, "listDomains": 1}
    directory.clock.now += 31
    await enrich(directory, burst[:1])
    assert standin.calls == {"listVirtualMachines": 21, "listAccounts": 2, "listDomains": 2}


async def test_the_vm_of_a_job_the_owner_of_the_vm_and_what_is_missing(standin, directory):
    job = await enrich(directory, [bus("VM.CREATE", jobid="d3c2b1a0-0000-4000-8000-00000000000a")])
    assert job[0]["vm"] == recorded("queryAsyncJobResult")["jobresult"]["virtualmachine"]
    assert standin.calls["queryAsyncJobResult"] == 1 and "listVirtualMachines" not in standin.calls
    # an administrator deployed it: the event names the administrator's account, the VM its owner's
    by_admin = await enrich(directory, [bus("VM.CREATE", account=ADMIN)])
    assert by_admin[0]["account_details"] == {"id": ACCOUNT, "name": "shop", "networkdomain": "acct.test"}
    gone = "0d0d0d0d-0000-4000-8000-000000000000"
    out = await enrich(directory, [bus("VM.CREATE", entityuuid=gone, VirtualMachine=gone),
                                   bus("VM.START", account="0e0e0e0e-0000-4000-8000-000000000000")])  # fmt: skip
    assert "vm" not in out[0] and "account_details" not in out[0]
    with pytest.raises(BadEvent, match=f"^VM.CREATE carries no vm details: CloudStack lists no VM {gone} "
                                       r"\(gone already, or not visible to the API key\)$"):  # fmt: skip
        cloudstack.vm(out[0], cloudstack.notice(out[0]))
    # an account CloudStack does not list: the VM's own (by name in its domain) is taken
    assert out[1]["account_details"]["id"] == ACCOUNT and "cloudstack_lookup" not in out[1]


async def test_a_refusal_waiting_will_not_change_is_said_and_the_event_goes_on(standin, directory):
    standin.errors["listAccounts"] = (430, "Unable to execute API command listaccounts due to missing parameter")
    try:
        out = await enrich(directory, [bus("VM.CREATE"), bus("VM.DESTROY")])
    finally:
        del standin.errors["listAccounts"]
    assert out[1] == bus("VM.DESTROY") and "vm" not in out[0]
    with pytest.raises(BadEvent, match="^VM.CREATE carries no vm details: CloudStack refused a lookup for it: 430 "
                                       "Unable to execute API command listaccounts due to missing parameter$"):  # fmt: skip
        cloudstack.vm(out[0], cloudstack.notice(out[0]))
    assert directory.entries == {}  # the refusal is not kept: the next event asks again


async def test_an_unreachable_api_is_raised_and_nothing_of_it_kept(standin, directory):
    standin.stop()
    try:
        with pytest.raises(Unreachable):
            await enrich(directory, [bus("VM.CREATE"), bus("VM.START")])
        assert directory.entries == {}
    finally:
        standin.start()
    assert "vm" in (await enrich(directory, [bus("VM.CREATE")]))[0]
    # an API that answers with errors (5xx) is not asked once per event of the batch: the first
    # failure ends the lookups under way (each tried twice here) and the others are never made
    standin.errors["listVirtualMachines"] = (530, "Caught a DB exception")
    standin.calls.clear()
    try:
        with pytest.raises(Unreachable, match="530"):
            await enrich(directory, [bus("VM.START") for _ in range(5 * CONCURRENCY)])
    finally:
        del standin.errors["listVirtualMachines"]
    assert 0 < standin.calls["listVirtualMachines"] <= 3 * CONCURRENCY  # not 2 × 5 × CONCURRENCY
