"""The `bus_status` table: each process's bus sources written every few seconds (rows not written
for a day dropped), and read back as `minidns events status` prints them."""

from __future__ import annotations

import datetime

from .status import BusStatus

FORGET = datetime.timedelta(days=1)  # a process silent this long is gone: its rows are dropped
STALE = 30.0  # seconds: a row older than this is from a process that stopped writing (or ended)
WRITE = (
    "INSERT INTO bus_status (host, source, state, updated_at) VALUES ($1, $2, $3, now())"
    " ON CONFLICT (host, source) DO UPDATE SET state = $3, updated_at = now()"
)


async def write_status(pool, host: str, bus: BusStatus) -> None:
    async with pool.acquire(timeout=5) as conn, conn.transaction():
        await conn.executemany(WRITE, [(host, name, state) for name, state in bus.to_json().items()])
        await conn.execute("DELETE FROM bus_status WHERE updated_at < now() - $1::interval", FORGET)


async def read_status(conn) -> list[dict]:
    """Every process's sources, with the age of their row in seconds."""
    rows = await conn.fetch("SELECT host, source, state, extract(epoch FROM now() - updated_at)::float8 AS age"
                            " FROM bus_status ORDER BY source, host")  # fmt: skip
    return [dict(r) for r in rows]


def report(rows: list[dict]) -> list[str]:
    """Lines for a person: per process and source, its connection, counts, last error and lag."""
    if not rows:
        return ["no serve process consumes a message bus (bus_status is empty)"]
    return [line for row in rows for line in describe(row)]


def describe(row: dict) -> list[str]:
    s, age = row["state"], row["age"]
    if age > STALE:
        link = f"unknown: not updated for {age:.0f} s (the process stopped?); last said {state_text(s)}"
    else:
        link = state_text(s)
    counts = ", ".join(f"{k} {s.get(k, 0)}" for k in ("received", "applied", "ignored", "failed", "duplicates", "redelivered"))
    lines = [f"{s['name']} ({s['kind']}) on {row['host']}: {link}", f"  messages: {counts}",
             f"  lag: {'not known' if s.get('lag') is None else s['lag']}"]  # fmt: skip
    if s.get("waiting"):
        lines.append(f"  waiting: {s['waiting']}")
    if s.get("last_error"):
        when = datetime.datetime.fromtimestamp(s["last_error_at"], datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        lines.append(f"  last error ({when}): {s['last_error']}")
    return lines


def state_text(s: dict) -> str:
    if s.get("connected"):
        return f"connected to {s.get('broker')}"
    return f"not connected: {s.get('reason')}"
