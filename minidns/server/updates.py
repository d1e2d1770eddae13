"""The door for dynamic UPDATE (RFC 2136, opcode 5) over UDP and TCP: who may update what is decided
here, before the zone's data is read — so a refusal says nothing about what the zone holds — and
the update itself is applied by services/updates.py under the zone lock.

In order: the message's form (FORMERR; more than `update_max_records` records REFUSED), the zone
(NOTAUTH when not served; REFUSED when served from a zone file: read-only, or without a
database), the sender's address (`update_acl`, REFUSED), TSIG (required unless
`update_require_tsig` is off; a failed TSIG was answered NOTAUTH with its error already, RFC 8945
§5.2), the prerequisites' forms and the update prescan (RFC 2136 §3.2, §3.4.1: FORMERR, NOTZONE;
DNSSEC types REFUSED), the grants (xfr/grants.py: first match wins, none → REFUSED), the updates
in flight for the zone (`update_max_queued`, SERVFAIL: try again). Then the prerequisites and the
update, all or nothing; the reply echoes the zone section and is signed with the request's key.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import dns.name
import dns.rcode
import dns.rdatatype

from ..services.updates import Outcome, Request, Updates
from ..wire import IN, NOERROR, NOTAUTH, REFUSED, SERVFAIL
from ..wire.query import Query
from ..wire.render import render_error
from ..xfr.grants import decide
from ..xfr.tsig import Signed, Signer
from ..xfr.update import UpdateError, check_prerequisite_forms, parse_update, prescan
from .transfers import Acl

log = logging.getLogger("minidns.update")


class Deferred:
    """A reply made by a coroutine, started at once (the update goes in even when the client has
    gone): async-iterable as one message, as the TCP transport sends a transfer's."""

    def __init__(self, coro):
        self.task = asyncio.ensure_future(coro)

    async def __aiter__(self):
        yield await self.task


class UpdateDoor:
    """`handle(q, data, peer, signed, keep)` → the reply (bytes) when it is known at once, else a
    Deferred. `store()` is the database's store, or None; `from_file(snapshot)` whether a zone is
    served from a zone file; `grants()` the grants in force (config first, then the database's)."""

    def __init__(self, engine, *, store, from_file, grants, serving=None, require_tsig: bool = True, acl=(),
                 max_records: int = 5000, max_queued: int = 1000, wait_served: float = 2.0):  # fmt: skip
        self.engine = engine
        self.store, self.from_file, self.grants = store, from_file, grants
        self.serving = serving  # (origin, serial, timeout) → once this process serves the zone at that serial
        self.wait_served = wait_served
        self.require_tsig = require_tsig
        self.acl = Acl.parse(acl) if acl else None  # the prefixes UPDATE is taken from; None: any
        self.max_records = max_records
        self.max_queued = max_queued
        self.updates: Updates | None = None
        self.stats: Counter = Counter()  # replies by rcode name, for metrics and tests

    def handle(self, q: Query, data: bytes, peer, signed: Signed | None, keep: int):
        zone_section = data[12 : q.qend]
        key = signed.key.name if signed is not None else None
        try:
            snapshot, update = self._admitted(q, data, peer, key)
        except UpdateError as e:
            return self._reply(q, zone_section, keep, signed, e.rcode, str(e), peer, key)
        zone = snapshot.name
        store = self.store()
        if self.updates is None or self.updates.store is not store:
            self.updates = Updates(store)
        queued = len(self.updates.group.queues.get(zone, ()))
        if queued >= self.max_queued:
            return self._reply(q, zone_section, keep, signed, SERVFAIL, f"{queued} updates in flight for {zone}", peer, key)
        source = f"update:{key}" if key is not None else "update"
        request = Request(update, source, self._managed_rule(key, update.zone))
        return Deferred(self._applied(q, zone_section, keep, signed, snapshot.origin, zone, request, peer, key))

    def _admitted(self, q: Query, data: bytes, peer, key):
        """(zone name, update) for a message that may go to the zone's data; UpdateError if not."""
        update = parse_update(data, self.max_records)
        snapshot = self.engine.table.zones.get(q.key) if update.zclass == IN else None
        if snapshot is None:
            raise UpdateError(NOTAUTH, f"zone {update.zone} is not served here")
        if self.store() is None or self.from_file(snapshot):
            raise UpdateError(REFUSED, f"zone {update.zone} is served from a zone file: read-only")
        if self.acl is not None and not self.acl.allows(peer[0] if peer else None, None):
            raise UpdateError(REFUSED, f"{_peer_text(peer)} is not in update_acl")
        if key is None and self.require_tsig:
            raise UpdateError(REFUSED, "unsigned: updates must be signed with a TSIG key (update_require_tsig)")
        check_prerequisite_forms(update)
        prescan(update)
        if key is not None:
            self._granted(key, update)
        return snapshot, update

    def _granted(self, key: dns.name.Name, update) -> None:
        """Every record of the update section allowed to `key` by the first grant matching it; a key
        with no grant in the zone at all may not ask even prerequisites."""
        grants = self.grants()
        if not any(g.allow and g.key == key and (g.zone is None or g.zone == update.zone) for g in grants):
            raise UpdateError(REFUSED, f"key {key} has no grant in zone {update.zone}")
        for rr in update.updates:
            g = decide(grants, key, update.zone, rr.name, rr.rtype)
            if g is None or not g.allow:
                raise UpdateError(REFUSED, f"key {key} may not update {rr.name} {dns.rdatatype.to_text(rr.rtype)}")

    def _managed_rule(self, key, zone):
        """Whether the update may change an RRset the event sink made: only with a grant saying so."""
        if key is None:
            return lambda owner, rtype: False
        grants = self.grants()

        def may(owner, rtype) -> bool:
            g = decide(grants, key, zone, owner, rtype)
            return g is not None and g.allow and g.managed

        return may

    async def _applied(self, q, zone_section, keep, signed, origin, zone, request, peer, key) -> bytes:
        """The update applied and committed, then — so that the client reads its own write here, as
        from BIND or Knot — answered once this process serves the new serial (or `wait_served`
        seconds have passed: the change is committed, and followed as every change is)."""
        try:
            outcome = await self.updates.apply(zone, request)
            if outcome.serial is not None and self.serving is not None:
                await self.serving(origin, outcome.serial, self.wait_served)
        except Exception:  # noqa: BLE001 - RFC 8906: never leave a request unanswered
            log.exception("update of zone %s failed", zone)
            outcome = Outcome(SERVFAIL, "internal error")
        return self._reply(q, zone_section, keep, signed, outcome.rcode, outcome.reason, peer, key, outcome.serial)

    def _reply(self, q, zone_section, keep, signed, rcode, reason, peer, key, serial=None) -> bytes:
        name = dns.rcode.to_text(rcode)
        self.stats[name] += 1
        if rcode == NOERROR:
            if log.isEnabledFor(logging.INFO):
                log.info("update %s from %s key %s: NOERROR%s", _zone_text(zone_section), _peer_text(peer), key or "(unsigned)",
                         f", serial {serial}" if serial else " (no change)")  # fmt: skip
        else:
            log.warning("update %s from %s key %s: %s: %s", _zone_text(zone_section), _peer_text(peer), key or "(unsigned)",
                        name, reason)  # fmt: skip
        opt = self.engine.reply_opt(q) if q.edns is not None else None
        reply = render_error(q.id, keep, zone_section, rcode, opt)
        if signed is not None:
            reply = Signer(signed).sign(reply)
        return reply


def _peer_text(peer) -> str:
    return f"{peer[0]}#{peer[1]}" if peer and len(peer) > 1 else str(peer)


def _zone_text(zone_section: bytes) -> str:
    try:
        return dns.name.from_wire(zone_section, 0)[0].to_text()
    except Exception:  # noqa: BLE001 - a malformed zone section is logged raw
        return repr(zone_section[:64])
