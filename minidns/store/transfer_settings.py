"""The transfer settings a server reads from the database: TSIG keys, each zone's access list and
its secondaries (its own and its pool's targets), and the UPDATE grants. Changes to them NOTIFY
db.CONFIG_CHANNEL, and the servers read them again (store/follow.py); they are written by
services/access.py and services/update_grants.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..xfr.grants import Grant, grant_from

log = logging.getLogger("minidns")


@dataclass
class TransferSettings:
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # (name, algorithm, secret)
    acls: dict[str, list[str]] = field(default_factory=dict)  # zone name -> entries
    secondaries: dict[str, list[tuple[str, int, str | None]]] = field(default_factory=dict)  # zone -> (address, port, key)
    update_grants: tuple[Grant, ...] = ()  # by position: the first that matches decides


def grant_entry(row) -> dict:
    """An update_grants row in the grant's dict form (xfr/grants.grant_from reads it)."""
    return {"key": row["key_name"], "zone": row["zone"], "match": row["match"], "pattern": row["pattern"],
            "types": list(row["types"]), "action": row["action"], "managed": row["managed"]}  # fmt: skip


async def load_grants(conn) -> tuple[Grant, ...]:
    """The stored grants by position. A row that is no grant (written around services/update_grants.py)
    ends the table there: a deny rule skipped must not let a later grant through."""
    grants = []
    for r in await conn.fetch("SELECT id, position, key_name, zone, match, pattern, types, action, managed"
                              " FROM update_grants ORDER BY position"):
        try:
            grants.append(grant_from(grant_entry(r)))
        except ValueError as e:
            log.error("update grant %s (position %d) is not valid; it and the grants after it are not used: %s",
                      r["id"], r["position"], e)  # fmt: skip
            break
    return tuple(grants)


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
    s.update_grants = await load_grants(conn)
    return s
