"""When two takes count as different, and the level rules every take obeys.

A producer asking for N takes wants N things to choose between, not N copies:
two takes are *distinct* when their difference carries at least 1% of the
louder take's energy (-20 dB), which a listener hears as a different part
(one donor unit swapped in a two-bar fill is ~-9 dB; resampling or
crossfade details are far below -20 dB).

Level: a take is matched to the short-term loudness of the audio around it
and never peaks above the source's own peak (`limit_peak`: a look-ahead
gain that only ever turns down, so a take's edges, which continue the
source, stay untouched unless they themselves overshoot).
"""

from __future__ import annotations

import numpy as np

DISTINCT_DB = -20.0


def energy(y: np.ndarray) -> float:
    return float(np.sum(np.square(y, dtype=np.float64)))


def distinct(y: np.ndarray, kept: list[np.ndarray], db: float = DISTINCT_DB) -> bool:
    """True when y (channels, n) differs from every array in `kept` by at least `db` of energy."""
    ey = energy(y)
    for k in kept:
        ref = max(ey, energy(k))
        if ref <= 0.0 or energy(y - k) < ref * 10.0 ** (db / 10.0):
            return False
    return True


def count_distinct(takes: list[np.ndarray], db: float = DISTINCT_DB) -> int:
    """How many of `takes` are distinct from all the takes before them."""
    kept: list[np.ndarray] = []
    for y in takes:
        if distinct(y, kept, db):
            kept.append(y)
    return len(kept)


def limit_peak(y: np.ndarray, peak: float, sr: int, release_seconds: float = 0.005) -> np.ndarray:
    """y (channels, n) with no sample above `peak` in magnitude: a gain <= 1 that reaches each
    overshoot `release_seconds` early and leaves as slowly (moving minimum, then moving average)."""
    if peak <= 0.0:
        return y
    top = np.max(np.abs(y), axis=0)
    if not np.any(top > peak):
        return y
    g = np.minimum(1.0, peak / np.maximum(top, 1e-12))
    w = max(int(release_seconds * sr), 1)
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    g = minimum_filter1d(g, 2 * w + 1, mode="nearest")
    g = uniform_filter1d(g, 2 * w + 1, mode="nearest")
    g = np.minimum(g, peak / np.maximum(top, 1e-12))   # the smoothing may lift a sample back over
    return (y * np.minimum(g, 1.0)[None, :]).astype(np.float32)
