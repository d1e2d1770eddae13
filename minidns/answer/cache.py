"""The reply cache (rendered replies keyed by the query's bytes after its ID) and its Doorkeeper."""

from __future__ import annotations


class ReplyCache:
    """Rendered replies keyed by the query's bytes after its ID.

    Two generations bound the memory, by entries and by octets: when the young one is full it
    becomes the old one and the previous old one is dropped; a hit in the old generation is moved to
    the young one, so what is asked often stays. A name error enters only when its name is asked
    a second time (Doorkeeper), so a flood of random names does not churn it at all. Each value
    is (reply without its ID, version) where `version.live` says whether the snapshot (or zone table) it
    came from is still current.

    `probe(key)` is the transports' fast path: the young generation's entry for `key`, or None —
    one dict lookup; the caller checks `entry[1].live` and splices its ID onto `entry[0]`.
    """

    __slots__ = ("young", "old", "limit", "octets", "max_octets", "probe")

    ENTRY_OVERHEAD = 200  # dict slot, tuple and two bytes objects, roughly
    MAX_REPLY = 16384  # larger replies are rendered each time rather than kept

    def __init__(self, entries: int, max_octets: int = 64 << 20):
        self.limit = max(1, entries // 2)
        self.max_octets = max_octets // 2
        self.old: dict[bytes, tuple] = {}
        self._start_young()

    def _start_young(self) -> None:
        """A new, empty young generation; `probe` follows it."""
        self.young: dict[bytes, tuple] = {}
        self.probe = self.young.get
        self.octets = 0

    def get(self, key: bytes):
        """The entry for `key` from either generation (an old one is moved to the young), or None."""
        hit = self.young.get(key)
        if hit is None:
            hit = self.old.pop(key, None)
            if hit is not None:
                self.put(key, hit)
        return hit

    def put(self, key: bytes, value: tuple) -> None:
        if len(value[0]) > self.MAX_REPLY:
            return
        size = len(key) + len(value[0]) + self.ENTRY_OVERHEAD
        if len(self.young) >= self.limit or self.octets + size > self.max_octets:
            self.old = self.young
            self._start_young()
        self.young[key] = value
        self.octets += size

    def clear(self) -> None:
        self.old = {}
        self._start_young()

    def __len__(self) -> int:
        return len(self.young) + len(self.old)


class Doorkeeper:
    """Names seen once lately, over two generations of `size`: a name error's reply is cached only
    when its name is asked a second time. A random-subdomain flood asks each name once, so its
    replies never enter the reply cache and do not push out the replies real traffic asks for
    again and again; a missing name asked repeatedly (a typo, a resolver's retry, its AAAA after
    its A) is cached from its second time."""

    __slots__ = ("young", "old", "size")

    def __init__(self, size: int = 32768):
        self.size = max(1, size)
        self.young: set[bytes] = set()
        self.old: set[bytes] = set()

    def seen(self, key: bytes) -> bool:
        """Whether `key` came lately; if not, it is remembered."""
        if key in self.young or key in self.old:
            return True
        if len(self.young) >= self.size:
            self.old, self.young = self.young, set()
        self.young.add(key)
        return False
