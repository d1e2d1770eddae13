"""Designate's list requests (services/listing.py): filters with `*` wildcards, sort keys, keyset
paging by marker, and the refusals, over a real table."""

import uuid

import pytest

from minidns.services.listing import MarkerNotFound, Query, Where, by_creation, int_filter, page
from minidns.store.records import Invalid

# Seven rows made by the query itself: names z00.test. .. z06.test., TTLs 100, 101, 102, 100, ...
BASE = ("SELECT md5(g::text)::uuid AS id, format('z%s.test.', lpad(g::text, 2, '0')) AS name, 100 + g % 3 AS ttl,"
        " now() AS created_at FROM generate_series(0, 6) g")
SORTS = {"name": "name", "ttl": "ttl", "created_at": "created_at", "id": "id"}


@pytest.mark.parametrize("value, sql, args", [
    ("www.example.", "name = $1", ["www.example."]),
    ("*.example.", "name LIKE $1", ["%.example."]),
    ("a_b*", "name LIKE $1", ["a\\_b%"]),  # SQL's own wildcards are escaped: only `*` is one
    ("100%*", "name LIKE $1", ["100\\%%"]),
])  # fmt: skip
def test_a_filter_is_exact_unless_it_holds_a_star(value, sql, args):
    w = Where()
    w.text_match("name", value)
    assert (w.sql(), w.args) == (f" WHERE {sql}", args)


def test_an_empty_where_adds_nothing_and_arguments_are_numbered_in_order():
    w = Where()
    assert w.sql() == ""
    assert (w.arg("x"), w.arg(3)) == ("$1", "$2")


@pytest.mark.parametrize("value, ok", [("300", 300), ("-1", -1), ("ten", None), ("1.5", None)])
def test_a_whole_number_filter(value, ok):
    if ok is None:
        with pytest.raises(Invalid, match="must be a whole number"):
            int_filter("ttl", value)
    else:
        assert int_filter("ttl", value) == ok


@pytest.fixture
def zones():
    return [f"z{i:02d}.test." for i in range(7)]


async def test_pages_follow_each_other_by_marker_in_either_direction(pool, zones):
    for sort_dir, expected in (("asc", zones), ("desc", zones[::-1])):
        seen, marker = [], None
        async with pool.acquire() as conn:
            while True:
                rows, total = await page(conn, BASE, Where(), Query(sort_key="name", sort_dir=sort_dir, limit=3, marker=marker), SORTS, "zone")
                assert total == len(zones)
                seen += [r["name"] for r in rows[:3]]
                if len(rows) <= 3:  # one more than the limit is fetched: it says whether more follow
                    break
                marker = rows[2]["id"]
        assert seen == expected


async def test_equal_sort_keys_are_ordered_by_id_so_no_row_is_skipped(pool, zones):
    async with pool.acquire() as conn:
        first, _ = await page(conn, BASE, Where(), Query(sort_key="ttl", limit=2), SORTS, "zone")
        rest, _ = await page(conn, BASE, Where(), Query(sort_key="ttl", limit=10, marker=first[1]["id"]), SORTS, "zone")
    assert sorted(r["name"] for r in first[:2] + rest) == zones


async def test_filters_narrow_the_total(pool, zones):
    w = Where()
    w.add(f"ttl = {w.arg(101)}")
    async with pool.acquire() as conn:
        rows, total = await page(conn, BASE, w, Query(sort_key="name", limit=10), SORTS, "zone")
    assert total == 2 and [r["name"] for r in rows] == ["z01.test.", "z04.test."]


@pytest.mark.parametrize("query, error, message", [
    (Query(sort_key="serial"), Invalid, "sort_key must be one of"),
    (Query(sort_dir="up"), Invalid, "sort_dir must be asc or desc"),
    (Query(marker=uuid.UUID(int=7)), MarkerNotFound, "could not be found"),
])  # fmt: skip
async def test_a_bad_request_is_refused(pool, zones, query, error, message):
    async with pool.acquire() as conn:
        with pytest.raises(error, match=message):
            await page(conn, BASE, Where(), query, SORTS, "zone")


async def test_by_creation_gives_exactly_a_page_and_refuses_a_marker_it_does_not_match(pool, zones):
    """The small resources' lists (TSIG keys, shares, transfer requests and accepts): at most
    `limit` rows by creation then id, the total of all pages, and a marker outside the filter is
    MarkerNotFound rather than an empty page."""
    w = Where()
    w.add(f"ttl <> {w.arg(101)}")
    async with pool.acquire() as conn, conn.transaction():  # one now(): the rows' creation time
        first, total = await by_creation(conn, BASE, w, 3, None)
        rest, _ = await by_creation(conn, BASE, w, 3, first[-1]["id"])
        outside = (await conn.fetchrow(f"SELECT id FROM ({BASE}) b WHERE ttl = 101"))["id"]
        with pytest.raises(MarkerNotFound):
            await by_creation(conn, BASE, w, 3, outside)
    assert total == 5 and len(first) == 3 and len(rest) == 2
    by_id = sorted(z for z in zones if z not in ("z01.test.", "z04.test."))
    assert sorted(r["name"] for r in first + rest) == by_id
