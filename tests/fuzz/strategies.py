"""Hypothesis strategies for DNS messages: the generator families of gen.py with every choice
drawn from hypothesis, so a failing message shrinks to a small one."""

from __future__ import annotations

from hypothesis import strategies as st

from .gen import FAMILIES, Choices, Keys, generate, mutate

class DrawChoices(Choices):
    """Choices drawn from a hypothesis `draw`; `chance` shrinks towards False, `int` towards `lo`."""

    def __init__(self, draw):
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 999)) >= (1 - p) * 1000

    def pick(self, seq):
        return self.draw(st.sampled_from(seq))

    def bytes(self, n: int) -> bytes:
        return self.draw(st.binary(min_size=n, max_size=n))


@st.composite
def messages(draw, keys: Keys, families=tuple(FAMILIES)) -> bytes:
    """A generated message of one of `families`."""
    r = DrawChoices(draw)
    _, wire = generate(r, keys, draw(st.sampled_from(families)))
    return wire


@st.composite
def mutated(draw, keys: Keys, seeds: tuple[bytes, ...] = ()) -> bytes:
    """A generated message or a corpus seed, then mutated at the byte level."""
    r = DrawChoices(draw)
    if seeds and r.chance(0.5):
        base = r.pick(seeds)
    else:
        _, base = generate(r, keys)
    return mutate(r, base, seeds)
