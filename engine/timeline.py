"""Tempo-grid arithmetic shared by the engine, the backends and the clients.

Conventions (the same as REAPER and Live): `bpm` counts quarter notes per
minute whatever the signature; a bar of num/den lasts num * 4 / den quarter
notes, so 7/8 at 120 BPM is 1.75 s. The grid "unit" is one denominator note
(an eighth in 6/8 or 7/8), so a bar always holds `num` units.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SIG = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")


def parse_sig(text: str) -> tuple[int, int]:
    """'7/8' -> (7, 8). Denominators are powers of two from 1 to 32."""
    m = _SIG.match(str(text))
    if not m:
        raise ValueError(f"time signature {text!r} is not of the form N/D, e.g. 4/4 or 7/8")
    num, den = int(m.group(1)), int(m.group(2))
    if not 1 <= num <= 32 or den not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f"time signature {text!r}: numerator must be 1-32 and denominator 1, 2, 4, 8, 16 or 32")
    return num, den


@dataclass(frozen=True)
class Grid:
    bpm: float
    num: int = 4
    den: int = 4
    downbeat: float = 0.0  # seconds (in the source) of any bar line

    @property
    def bar_quarters(self) -> float:
        return self.num * 4.0 / self.den

    @property
    def unit_seconds(self) -> float:
        """Length of one denominator note."""
        return 60.0 / self.bpm * 4.0 / self.den

    @property
    def bar_seconds(self) -> float:
        return self.bar_quarters * 60.0 / self.bpm

    def bars_seconds(self, bars: float) -> float:
        return bars * self.bar_seconds

    def unit_time(self, k: int) -> float:
        """Time of grid unit k (unit 0 starts at the downbeat; may be negative)."""
        return self.downbeat + k * self.unit_seconds

    def unit_index(self, t: float) -> float:
        return (t - self.downbeat) / self.unit_seconds

    def unit_in_bar(self, k: int) -> int:
        return k % self.num

    def units_covering(self, t0: float, t1: float) -> range:
        """Indices of the units that overlap [t0, t1)."""
        k0 = math.floor(self.unit_index(t0) + 1e-9)
        k1 = math.ceil(self.unit_index(t1) - 1e-9)
        return range(k0, max(k1, k0 + 1))


def round_half_up(x: float) -> int:
    """The protocol's rounding: floor(x + 0.5), as JavaScript's Math.round and the usual Lua idiom,
    so every client computes the same sample counts (Python's round() would go to even on .5)."""
    return int(math.floor(x + 0.5))


def bars_to_samples(bars: float, grid: Grid, sr: int) -> int:
    """Exact output length of a continuation: round(bars * bar_quarters * 60 / bpm * sr)."""
    return round_half_up(bars * grid.bar_quarters * 60.0 / grid.bpm * sr)


def span_to_samples(start: float, end: float, sr: int) -> tuple[int, int]:
    """(first sample, length) of the span [start, end) at rate sr, as protocol v1 defines it."""
    return round_half_up(start * sr), round_half_up((end - start) * sr)
