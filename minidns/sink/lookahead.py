"""A batch's reads made before its events are applied, a few queries for the whole batch: what
each event's handler is going to ask for — the resource's row, the zones its records may go to,
the RRsets the resource made, the owners its records will take, the floating IPs at its addresses —
worked out from the event alone and read at once into the batch's Scope (ZoneLog, Resources, Made),
which then answers the handlers without a round trip each.

It is a guess and only a guess: the handlers ask for what they need as before, and what was not
read ahead (an event the guess does not understand, a name another event of the batch took first)
they read themselves. So a wrong guess costs a query, never a wrong answer; and an event the guess
cannot read at all is left to its handler to refuse."""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.reversename

from ..store.records import zone_name
from . import cloudstack, nova
from .envelope import Header
from .handlers import instance_name
from .outcome import BadEvent, Ignore
from .placement import reverse_zone_names, zone_names
from .sync import Ident, Scope


@dataclass
class Guess:
    """What a batch's handlers will read."""

    keys: set = field(default_factory=set)  # event_resources keys
    zones: set = field(default_factory=set)  # zone names
    idents: list = field(default_factory=list)  # resources whose RRsets are looked at
    deleted: list = field(default_factory=list)  # keys of instances deleted: their addresses' floating IPs
    fixed_ips: set = field(default_factory=set)  # addresses whose floating IPs follow the instance
    instances: list = field(default_factory=list)  # (Instance, candidate zone names) created


async def read_ahead(scope: Scope, events: list[tuple[dict, Header]]) -> None:
    """Read at once what the events' handlers will ask for (see the module's doc)."""
    g = Guess()
    for ev, header in events:
        try:
            guess(g, scope.settings, ev, header)
        except Exception:  # noqa: BLE001 - no guess for it: its handler reads what it needs, or says what is wrong
            continue
    await scope.log.prefetch_zones(scope.conn, g.zones)
    await scope.resources.prefetch(g.keys, g.fixed_ips)
    gone = set()
    for key in g.deleted:
        row = scope.resources.rows.get(key)
        gone.update((row["data"] or {}).get("addresses", []) if row else [])
    await scope.resources.prefetch((), gone)  # nothing to read when they are all known
    await scope.made.prefetch(g.idents, owners(scope, g))


def guess(g: Guess, settings, ev: dict, header: Header) -> None:
    """Add what the event's handler will read."""
    decoder = {"nova": nova, "cloudstack": cloudstack}.get(header.source)
    news = decoder.notice(ev) if decoder else None
    if news is None or isinstance(news, Ignore):
        return
    key = ("nova", "instance", news.instance_id) if decoder is nova else ("cloudstack", "vm", news.vm_id)
    g.keys.add(key)
    g.idents.append(Ident(*key))
    if news.deleted:
        if decoder is nova:
            g.deleted.append(key)  # its addresses' floating IPs follow
        return
    if decoder is cloudstack:
        g.zones.update(canonical(n) for n in cloudstack.vm(ev, news).zone_candidates(settings.cloudstack_common_zone))
        return
    inst = nova.instance(ev, news)
    candidates = [canonical(n) for n in zone_names(settings, inst.tenant, inst.project)]
    g.zones.update(candidates)
    g.fixed_ips.update(inst.addresses)
    if settings.ptr:
        for a in inst.addresses:
            g.zones.update(reverse_zone_names(a))
    g.instances.append((inst, candidates))


def canonical(name: str) -> str:
    return zone_name(name).to_text().lower()


def owners(scope: Scope, g: Guess) -> list:
    """The (zone id, owner) pairs the created instances' records will take: their name in the
    first of their zones that exists, and the reverse names of their addresses."""
    pairs = []
    rows = scope.log.rows
    for inst, candidates in g.instances:
        zone = next((rows[n] for n in candidates if n in rows), None)
        if zone is None:
            continue
        try:
            pairs.append((zone["id"], instance_name(scope.settings, inst, zone["name"]).to_wire().lower()))
        except BadEvent:
            continue
        for a in inst.addresses if scope.settings.ptr else ():
            rz = next((rows[n] for n in reverse_zone_names(a) if n in rows), None)
            if rz is not None:
                pairs.append((rz["id"], dns.reversename.from_address(a).to_wire().lower()))
    return pairs
