"""`minidns update grant add|list|delete`: the dynamic UPDATE grants stored in the database
(services/update_grants.py; the configured ones are read before them, server/config.py)."""

from __future__ import annotations

from .services import update_grants


async def update_command(args, database) -> int:
    """`minidns update grant add|list|delete`: the UPDATE grants in the database."""
    if args.grant_action == "add":
        entry = {"key": args.key, "zone": args.zone, "match": args.match, "pattern": args.pattern,
                 "types": [t for t in (args.types or "").split(",") if t.strip()], "action": "deny" if args.deny else "grant",
                 "managed": args.managed}  # fmt: skip
        made = await update_grants.add_grant(database.pool, entry, args.position, args.description)
        print(f"added grant {made['id']} at position {made['position']}")
    elif args.grant_action == "list":
        print_table(GRANT_COLUMNS, [grant_row(g) for g in await update_grants.list_grants(database.pool, args.key, args.zone)])
    else:
        await update_grants.delete_grant(database.pool, args.grant_id)
        print(f"deleted grant {args.grant_id}")
    return 0


GRANT_COLUMNS = ("POS", "ID", "KEY", "ZONE", "MATCH", "PATTERN", "TYPES", "ACTION", "MANAGED", "DESCRIPTION")


def grant_row(g: dict) -> tuple:
    return (g["position"], g["id"], g["key"], g["zone"] or "*", g["match"], g["pattern"] or "-", ",".join(g["types"]) or "*",
            g["action"], "yes" if g["managed"] else "no", g["description"] or "")  # fmt: skip


def print_table(header: tuple, rows: list[tuple]) -> None:
    """Columns padded to their widest cell, the header first."""
    cells = [header, *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
