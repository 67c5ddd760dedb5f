"""Cutting audio into grid units and describing each unit with a small spectral fingerprint.

A unit is one denominator note of the grid (a quarter in 4/4, an eighth in
7/8), or a group of them when they are very short. Its feature is the log
energy in 16 log-spaced bands for each of 4 equal sub-divisions: enough to
tell a kick beat from a snare beat and a chord change from a repeat, cheap
enough to compute for ten minutes of audio in well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..timeline import Grid

SUBDIVISIONS = 4
BANDS = 16
MIN_UNIT_SECONDS = 0.12


@dataclass(frozen=True)
class UnitGrid:
    """Units of `group` grid notes each: unit k starts at origin + k * length (samples, float)."""

    origin: float        # sample position of unit 0 (a bar line)
    length: float        # samples per unit
    per_bar: int         # units per bar (1: no bar structure known)

    def start(self, k) -> np.ndarray | int:
        return np.rint(self.origin + np.asarray(k) * self.length).astype(np.int64)

    def index_at(self, sample: float) -> int:
        return math.floor((sample - self.origin) / self.length + 1e-9)

    def covering(self, a: int, b: int) -> range:
        """Units overlapping samples [a, b)."""
        k0 = self.index_at(a)
        k1 = math.ceil((b - self.origin) / self.length - 1e-9)
        return range(k0, max(k1, k0 + 1))


def unit_grid(grid: Grid, sr: int) -> UnitGrid:
    note = grid.unit_seconds
    group = 1
    if note < MIN_UNIT_SECONDS:
        # Group notes so a unit is long enough to carry a sound, keeping bar lines on unit edges.
        fits = [g for g in range(2, grid.num + 1) if grid.num % g == 0 and g * note >= MIN_UNIT_SECONDS]
        group = fits[0] if fits else grid.num
    per_bar = grid.num // group
    length = note * group * sr
    return UnitGrid(origin=grid.downbeat * sr, length=length, per_bar=max(per_bar, 1))


def _band_matrix(n_fft: int, sr: int) -> np.ndarray:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    top = min(16000.0, sr / 2)
    edges = np.geomspace(40.0, top, BANDS + 1)
    m = np.zeros((len(freqs), BANDS), dtype=np.float32)
    for b in range(BANDS):
        sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not sel.any():  # very low bands at short FFT sizes: take the nearest bin
            sel = np.abs(freqs - math.sqrt(edges[b] * edges[b + 1])) == np.min(np.abs(freqs - math.sqrt(edges[b] * edges[b + 1])))
        m[sel, b] = 1.0 / sel.sum()
    return m


def unit_features(audio: np.ndarray, sr: int, ug: UnitGrid, ks: np.ndarray) -> np.ndarray:
    """Features (len(ks), SUBDIVISIONS * BANDS) of units ks, all inside the signal.

    `audio` is (n,) or (channels, n); channels are averaged frame by frame, so no mono copy of a
    long file is ever made."""
    x = audio if audio.ndim == 2 else audio[None]
    n = x.shape[1]
    if len(ks) == 0:
        return np.zeros((0, SUBDIVISIONS * BANDS), dtype=np.float32)
    sub = ug.length / SUBDIVISIONS
    frame = max(int(sub), 16)
    n_fft = 1 << max(int(math.ceil(math.log2(frame))), 4)
    starts = (ug.origin + ks[:, None] * ug.length + np.arange(SUBDIVISIONS)[None, :] * sub).ravel()
    starts = np.clip(np.rint(starts).astype(np.int64), 0, max(n - frame, 0))
    window = np.hanning(frame).astype(np.float32)
    bands = _band_matrix(n_fft, sr)
    out = np.empty((len(starts), BANDS), dtype=np.float32)
    step = max(1, (1 << 20) // n_fft)   # frames per FFT batch: ~25 MB of temporaries whatever the unit length
    for i in range(0, len(starts), step):
        st = starts[i:i + step]
        lo, hi = int(st.min()), min(int(st.max()) + frame, n)
        mono = x[:, lo:hi].mean(axis=0, dtype=np.float32)   # a contiguous block: no whole-file mono copy
        idx = np.minimum(st[:, None] - lo + np.arange(frame)[None, :], hi - lo - 1)
        frames = mono[idx] * window
        power = np.abs(np.fft.rfft(frames, n_fft, axis=1)) ** 2
        out[i:i + step] = power.astype(np.float32) @ bands
    logs = 10.0 * np.log10(out + 1e-10)
    return logs.reshape(len(ks), SUBDIVISIONS * BANDS)


def normalise(feats: np.ndarray, floor_db: float = -80.0) -> np.ndarray:
    """dB features relative to the loudest unit, floored, scaled to ~unit variance per dimension."""
    if len(feats) == 0:
        return feats
    top = np.max(feats)
    f = np.maximum(feats, top + floor_db) - top
    scale = np.std(f) + 1e-6
    return (f / scale).astype(np.float32)


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared distance between every row of a and every row of b."""
    aa = np.sum(a * a, axis=1)[:, None]
    bb = np.sum(b * b, axis=1)[None, :]
    d = aa + bb - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0) / a.shape[1]
