"""The reply cache: two generations bounded by entries and octets, the public probe the transports
use, and the Doorkeeper that keeps a flood of names asked once out of it."""

import dns.message
import pytest

from minidns.answer.cache import Doorkeeper, ReplyCache
from minidns.zones.snapshot import Version


def test_reply_cache_is_bounded_and_keeps_what_is_asked_again():
    cache = ReplyCache(4)
    for i in range(10):
        cache.put(bytes([i]), ("r", None))
        cache.get(b"\x00")  # asked every time: moved to the young generation each time
    assert len(cache) <= 4
    assert cache.get(b"\x00") is not None and cache.get(b"\x01") is None


def test_reply_cache_is_bounded_in_octets_and_skips_huge_replies():
    cache = ReplyCache(1000, max_octets=2 * (3 * (ReplyCache.ENTRY_OVERHEAD + 1001)))
    for i in range(10):
        cache.put(bytes([i]), (b"x" * 1000, None))
    assert len(cache.young) <= 3 and len(cache) <= 6
    cache.put(b"huge", (b"x" * (ReplyCache.MAX_REPLY + 1), None))
    assert cache.get(b"huge") is None



def key(name: str, rdtype: str = "A") -> bytes:
    """The cache key of a query for `name`: its bytes after the ID."""
    q = dns.message.make_query(name, rdtype)
    q.id = 0
    return q.to_wire()[2:]


# (what happens to the entry after it is put, whether probe finds it, whether get finds it)
PROBES = [
    ("nothing", True, True),
    ("rotated once", False, True),  # in the old generation: only the whole cache finds it
    ("rotated twice", False, False),  # dropped with the old generation
    ("cleared", False, False),
]


@pytest.mark.parametrize("after,probed,found", PROBES)
def test_probe_sees_the_young_generation_only(after, probed, found):
    cache = ReplyCache(4)
    version = Version()
    cache.put(key("www.example.test."), (b"reply", version))
    fillers = {"nothing": 0, "rotated once": 2, "rotated twice": 4}.get(after, 0)
    for i in range(fillers):
        cache.put(key(f"n{i}.example.test."), (b"other", version))
    if after == "cleared":
        cache.clear()
    hit = cache.probe(key("www.example.test."))
    assert (hit is not None) == probed
    assert (hit == (b"reply", version)) == probed
    assert (cache.get(key("www.example.test.")) is not None) == found


def test_a_probe_taken_before_a_rotation_follows_the_young_generation():
    cache = ReplyCache(2)
    cache.put(key("a.example.test."), (b"a", Version()))
    cache.put(key("b.example.test."), (b"b", Version()))  # rotates: the young generation is new
    assert cache.probe(key("b.example.test."))[0] == b"b"
    assert cache.probe(key("a.example.test.")) is None


# Names in the order asked → whether the Doorkeeper had seen each lately (generations of 2).
DOORKEEPER = [
    (["a", "a"], [False, True]),
    (["a", "b", "a"], [False, False, True]),
    (["a", "b", "c", "a"], [False, False, False, True]),  # "a" is in the old generation
    (["a", "b", "c", "d", "e", "a"], [False, False, False, False, False, False]),  # "a" dropped
]


@pytest.mark.parametrize("names,seen", DOORKEEPER)
def test_doorkeeper_remembers_names_over_two_generations(names, seen):
    door = Doorkeeper(2)
    assert [door.seen(key(f"{n}.example.test.")) for n in names] == seen
