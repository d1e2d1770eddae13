"""Designate's list requests: exact or `*`-wildcard filters, a sort key and direction, a limit and
a marker (the id of the last item seen), over any SELECT — keyset paging, so a page costs the
same wherever it is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..store.records import Invalid


@dataclass
class Query:
    """A list request: exact or `*`-wildcard filters, sort key and direction, limit and marker."""

    filters: dict = field(default_factory=dict)
    sort_key: str = "created_at"
    sort_dir: str = "asc"
    limit: int = 20
    marker: uuid.UUID | None = None


class MarkerNotFound(Invalid):
    """Designate's MarkerNotFound (400)."""

    status, type = 400, "invalid_marker"


class Where:
    """The WHERE clause of a list request, with its numbered arguments."""

    def __init__(self):
        self.conds: list[str] = []
        self.args: list = []

    def arg(self, value) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, cond: str) -> None:
        self.conds.append(cond)

    def text_match(self, column: str, value: str) -> None:
        """Designate's filter: `*` is a wildcard (SQL LIKE), else an exact match."""
        if "*" in value:
            pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
            self.add(f"{column} LIKE {self.arg(pattern)}")
        else:
            self.add(f"{column} = {self.arg(value)}")

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.conds)) if self.conds else ""


def int_filter(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"filter {key} must be a whole number, not {value!r}") from None


BY_CREATION = {"created_at": "created_at"}  # the only order of the small resources' lists


async def by_creation(conn, base: str, w: Where, limit: int, marker: uuid.UUID | None) -> tuple[list, int]:
    """A page of at most `limit` rows of `base` matching `w`, by creation after `marker`; and how
    many match in all pages."""
    rows, total = await page(conn, base, w, Query(limit=limit, marker=marker), BY_CREATION, "")
    return rows[:limit], total


async def page(conn, base: str, w: Where, q: Query, sorts: dict, what: str) -> tuple[list, int]:
    if q.sort_key not in sorts:
        raise Invalid(f"sort_key must be one of {', '.join(sorts)}")
    if q.sort_dir not in ("asc", "desc"):
        raise Invalid("sort_dir must be asc or desc")
    expr = sorts[q.sort_key]
    inner = f"SELECT * FROM ({base}) s{w.sql()}"
    total = await conn.fetchval(f"SELECT count(*) FROM ({inner}) c", *w.args)
    args = list(w.args)
    cond = ""
    if q.marker is not None:
        row = await conn.fetchrow(f"SELECT {expr} AS k FROM ({inner}) m WHERE id = ${len(args) + 1}", *args, q.marker)
        if row is None:
            raise MarkerNotFound(f"Marker {q.marker} could not be found")
        args += [row["k"], q.marker]
        op = ">" if q.sort_dir == "asc" else "<"
        cond = f" WHERE ({expr}, id) {op} (${len(args) - 1}, ${len(args)})"
    order = "DESC" if q.sort_dir == "desc" else "ASC"
    args.append(q.limit + 1)
    rows = await conn.fetch(f"SELECT * FROM ({inner}) p{cond} ORDER BY {expr} {order}, id {order} LIMIT ${len(args)}", *args)
    return [dict(r) for r in rows], total
