"""CloudStack's event bus as the sink reads it: the routing keys bound (the VM events of the RabbitMQ
plugin's `management-server.ActionEvent.<EVENT>.VirtualMachine.<uuid>`), and each VM.CREATE or
VM.START event completed with what the bus leaves out — the VM, its account and its domain — from
the CloudStack API (`enrich`)."""

from __future__ import annotations

import asyncio
import time

from ..sink.cloudstack import LOOKUP_NOTE, UP
from .cloudstack_api import ApiError, CloudStackAPI

EXCHANGE = "cloudstack-events"  # the exchange name CloudStack's documentation gives the RabbitMQ bus
VM_EVENTS = ("VM.CREATE", "VM.START", "VM.DESTROY", "VM.EXPUNGE")  # what the sink acts on (sink/cloudstack.py)
DETAILS = ("vm", "account_details", "domain_details")  # what a completed event carries (sink/cloudstack.py)
CACHE_SECONDS = 30.0  # accounts and domains are asked again after this long
CACHE_SIZE = 4096  # entries kept before the expired ones are dropped
CONCURRENCY = 8  # API requests at once for one batch


def routing_key(event: str, uuid: str = "*") -> str:
    """`eventSource.eventCategory.eventType.resourceType.resourceUuid`, each part with "." made
    "-", as RabbitMQEventBus.createRoutingKey builds it for an action event on a VM."""
    return f"management-server.ActionEvent.{event.replace('.', '-')}.VirtualMachine.{uuid}"


ROUTING_KEYS = tuple(routing_key(e) for e in VM_EVENTS)


class Directory:
    """The CloudStack API with its accounts and domains kept for CACHE_SECONDS (a burst of VM
    events for one account asks for it once); a lookup under way is shared, a failed one is not
    kept."""

    def __init__(self, api: CloudStackAPI, ttl: float = CACHE_SECONDS, clock=time.monotonic):
        self.api, self.ttl, self.clock = api, ttl, clock
        self.entries: dict[tuple[str, str], tuple[float, asyncio.Future]] = {}

    async def vm(self, ev: dict) -> dict | None:
        """The VM of the event: from its async job's result when it names one, else listVirtualMachines."""
        job = ev.get("jobid") or ev.get("jobId")
        found = await self.api.job_vm(job) if isinstance(job, str) and job else None
        return found or await self.api.virtual_machine(vm_id(ev))

    async def account(self, account_id: str) -> dict | None:
        return await self.cached("account", account_id, self.api.account)

    async def account_named(self, name: str, domain_id: str) -> dict | None:
        return await self.cached("account", f"{domain_id}/{name}", lambda _: self.api.account_named(name, domain_id))

    async def domain(self, domain_id: str) -> dict | None:
        return await self.cached("domain", domain_id, self.api.domain)

    async def cached(self, kind: str, key: str, fetch) -> dict | None:
        now = self.clock()
        hit = self.entries.get((kind, key))
        if hit is None or hit[0] <= now:
            self.prune(now)
            hit = (now + self.ttl, asyncio.ensure_future(fetch(key)))
            self.entries[(kind, key)] = hit
        try:
            return await asyncio.shield(hit[1])
        except Exception:
            if self.entries.get((kind, key)) is hit:
                del self.entries[(kind, key)]
            raise

    def prune(self, now: float) -> None:
        if len(self.entries) >= CACHE_SIZE:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}


def vm_id(ev: dict) -> str:
    """The VM's uuid: entityuuid, else the VirtualMachine entry ActionEventUtils adds."""
    return ev.get("entityuuid") or ev.get("VirtualMachine") or ""


def wants_details(ev) -> bool:
    """A completed VM.CREATE or VM.START event that lacks some of the details."""
    return (isinstance(ev, dict) and ev.get("event") in UP and ev.get("status") in (None, "Completed")
            and bool(vm_id(ev)) and not all(isinstance(ev.get(k), dict) for k in DETAILS))  # fmt: skip


def summary(item: dict) -> dict:
    """{id, name, networkdomain} of a listAccounts or listDomains item: what the sink reads."""
    return {"id": item.get("id"), "name": item.get("name"), "networkdomain": item.get("networkdomain")}


async def complete(directory: Directory, ev: dict) -> dict:
    """The event with the details it lacked; what could not be found is said under LOOKUP_NOTE
    (the VM gone already, an account or domain removed), and the event goes on without it."""
    out, notes = dict(ev), []
    if not isinstance(ev.get("vm"), dict):
        vm = await directory.vm(ev)
        if vm is None:
            return {**out, LOOKUP_NOTE: f"CloudStack lists no VM {vm_id(ev)} (gone already, or not visible to the API key)"}
        out["vm"] = vm
    account = await owner(directory, ev, out["vm"])
    if not isinstance(ev.get("account_details"), dict):
        if account is None:
            notes.append(f"CloudStack lists no account {ev.get('account')}")
        else:
            out["account_details"] = summary(account)
    if not isinstance(ev.get("domain_details"), dict):
        domain_id = (account or {}).get("domainid") or out["vm"].get("domainid")
        domain = await directory.domain(domain_id) if isinstance(domain_id, str) and domain_id else None
        if domain is None:
            notes.append(f"CloudStack lists no domain {domain_id}")
        else:
            out["domain_details"] = summary(domain)
    return {**out, LOOKUP_NOTE: "; ".join(notes)} if notes else out


async def owner(directory: Directory, ev: dict, vm: dict) -> dict | None:
    """The account that owns the VM: the one the event names (its `account` uuid) — unless the VM
    names another (an administrator deployed it for that account, and the event names the
    caller's), then that one, by name in the VM's domain. None when CloudStack lists none (a
    project's account, a removed one)."""
    account_id = ev.get("account")
    named = await directory.account(account_id) if isinstance(account_id, str) and account_id else None
    name, domain_id = vm.get("account"), vm.get("domainid")
    if isinstance(name, str) and isinstance(domain_id, str) and name and (named is None or named.get("name") != name):
        return await directory.account_named(name, domain_id) or named
    return named


async def enrich(directory: Directory, events: list) -> list:
    """The events, each completed VM.CREATE or VM.START that lacks them given its details (at most
    CONCURRENCY lookups at once); the others as they are. An event CloudStack refuses a lookup for
    (ApiError: waiting will not change it) goes on without its details, saying why. The first
    Unreachable (or any other failure) ends the batch's other lookups and is raised: the batch then
    waits and is tried again, without having asked an API that is away once per event."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(ev):
        if not wants_details(ev):
            return ev
        async with gate:
            try:
                return await complete(directory, ev)
            except ApiError as e:  # a refusal waiting will not change: the event goes on, and says why
                return {**ev, LOOKUP_NOTE: f"CloudStack refused a lookup for it: {e}"}

    return await first_failure_ends_all([asyncio.ensure_future(one(ev)) for ev in events])


async def first_failure_ends_all(tasks: list[asyncio.Future]) -> list:
    """The tasks' results in order; when one fails, the others are cancelled and its error raised."""
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION) if tasks else None
    finally:
        for t in tasks:
            t.cancel()  # nothing for those done
        await asyncio.gather(*tasks, return_exceptions=True)
    failed = next((t.exception() for t in tasks if not t.cancelled() and t.exception() is not None), None)
    if failed is not None:
        raise failed
    return [t.result() for t in tasks]
