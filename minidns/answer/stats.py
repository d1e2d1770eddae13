"""DNS query statistics: answers counted by (transport, qtype, rcode) and timed, cache hits summed."""

from __future__ import annotations

from bisect import bisect_left

# Query types counted by name in the statistics; any other is counted as 0 ("other"), so a client
# cannot make the label set grow without bound.
STAT_TYPES = frozenset((1, 2, 5, 6, 12, 13, 15, 16, 28, 29, 33, 35, 39, 43, 44, 46, 47, 48, 50, 51, 52, 53, 59, 61, 64,
                        65, 99, 251, 252, 255, 256, 257))  # fmt: skip
MALFORMED = -1  # the qtype key of a query that did not parse


class QueryStats:
    """DNS query statistics, kept off the cached fast path: the protocols count their cache hits
    (one integer increment; see `hits`), and each query the engine answers after a cache miss is
    counted by (tcp, qtype, rcode) and timed into a histogram per transport."""

    BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)

    __slots__ = ("protocols", "engine_hits", "tcp_hits", "answers", "buckets", "sums", "counts")

    def __init__(self):
        self.protocols: list = []  # UDP protocols, each counting its hits in `.hits`
        self.engine_hits = [0, 0]  # hits found by Engine.answer (old generation, 0x20), [udp, tcp]
        self.tcp_hits = 0  # added by TCP connections once per read
        self.answers: dict[tuple[bool, int, int], int] = {}
        self.buckets = ([0] * (len(self.BUCKETS) + 1), [0] * (len(self.BUCKETS) + 1))
        self.sums = [0.0, 0.0]
        self.counts = [0, 0]

    def answered(self, tcp: bool, qtype: int, reply, seconds: float) -> None:
        rcode = reply[3] & 0xF if isinstance(reply, (bytes, bytearray)) and len(reply) > 3 else None
        if rcode is None:  # no reply (RFC 1035 §4.1.1), or a zone transfer: counted elsewhere
            return
        key = (tcp, qtype if qtype in STAT_TYPES or qtype == MALFORMED else 0, rcode)
        self.answers[key] = self.answers.get(key, 0) + 1
        self.buckets[tcp][bisect_left(self.BUCKETS, seconds)] += 1
        self.sums[tcp] += seconds
        self.counts[tcp] += 1

    def hits(self) -> tuple[int, int]:
        """Cache hits so far: (udp, tcp)."""
        udp = self.engine_hits[0] + sum(p.hits for p in self.protocols)
        return udp, self.engine_hits[1] + self.tcp_hits
