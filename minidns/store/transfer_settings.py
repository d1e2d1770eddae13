"""The transfer settings a server reads from the database: TSIG keys, each zone's access list and
its secondaries (its own and its pool's targets). Changes to them NOTIFY db.CONFIG_CHANNEL, and
the servers read them again (store/follow.py); they are written by services/access.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TransferSettings:
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # (name, algorithm, secret)
    acls: dict[str, list[str]] = field(default_factory=dict)  # zone name -> entries
    secondaries: dict[str, list[tuple[str, int, str | None]]] = field(default_factory=dict)  # zone -> (address, port, key)


async def load_settings(conn) -> TransferSettings:
    s = TransferSettings()
    s.keys = [(r["name"], r["algorithm"], r["secret"]) for r in await conn.fetch("SELECT name, algorithm, secret FROM tsig_keys")]
    for r in await conn.fetch("SELECT name, allow_transfer FROM zones WHERE allow_transfer IS NOT NULL"):
        s.acls[r["name"]] = list(r["allow_transfer"])
    # A zone's secondaries: its own, and its pool's targets (services/pools.py).
    for r in await conn.fetch(
        "SELECT z.name, host(s.address) AS address, s.port, s.key_name FROM zone_secondaries s JOIN zones z ON z.id = s.zone_id"
        " UNION SELECT z.name, host(t.address), t.port, t.key_name FROM pool_targets t JOIN zones z ON z.pool_id = t.pool_id"
        " WHERE z.type <> 'CATALOG'"
    ):
        entries = s.secondaries.setdefault(r["name"], [])
        if not any(e[:2] == (r["address"], r["port"]) for e in entries):
            entries.append((r["address"], r["port"], r["key_name"]))
    return s
