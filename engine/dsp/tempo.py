"""Tempo and beat-phase estimation for requests that come without a grid.

Onset strength is half-wave rectified spectral flux of log band energies; the
beat period is the autocorrelation peak between 60 and 180 BPM under a broad
log-normal prior around 120 BPM (the usual resolution of octave errors), and
the phase is the comb offset that collects the most onset strength. A weak
peak means no steady pulse: the caller then works at onset level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..timeline import Grid

HOP_SECONDS = 0.01


@dataclass(frozen=True)
class TempoEstimate:
    grid: Grid | None
    confidence: float
    onsets: np.ndarray   # onset times in seconds (peaks of the strength curve)


def onset_strength(mono: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    hop = max(int(round(HOP_SECONDS * sr)), 1)
    n_fft = 1 << int(np.ceil(np.log2(4 * hop)))
    n = (len(mono) - n_fft) // hop + 1
    if n < 8:
        return np.zeros(0), hop / sr
    idx = np.arange(n)[:, None] * hop + np.arange(n_fft)[None, :]
    spec = np.abs(np.fft.rfft(mono[idx] * np.hanning(n_fft), axis=1))
    logs = np.log1p(100.0 * spec)
    flux = np.maximum(np.diff(logs, axis=0), 0.0).sum(axis=1)
    flux = np.concatenate([[0.0], flux])
    flux -= np.convolve(flux, np.ones(15) / 15, mode="same")  # remove slow loudness changes
    return np.maximum(flux, 0.0), hop / sr


def estimate(mono: np.ndarray, sr: int, num: int = 4, den: int = 4) -> TempoEstimate:
    env, dt = onset_strength(mono, sr)
    if len(env) < int(4.0 / dt) or not np.any(env > 0):
        return TempoEstimate(None, 0.0, np.zeros(0))
    peaks = np.flatnonzero((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > 2 * np.mean(env))) + 1
    onsets = peaks * dt
    e = env - env.mean()
    spec = np.fft.rfft(e, 2 * len(e))
    ac = np.fft.irfft(np.abs(spec) ** 2)[: len(e)]
    if ac[0] <= 0:
        return TempoEstimate(None, 0.0, onsets)
    ac /= ac[0]
    lags = np.arange(len(ac)) * dt
    sel = (lags >= 60.0 / 180.0) & (lags <= 1.0)
    bpms = 60.0 / lags[sel]
    prior = np.exp(-0.5 * (np.log2(bpms / 120.0) / 0.9) ** 2)
    score = ac[sel] * prior
    i = int(np.argmax(score))
    lag_i = np.flatnonzero(sel)[i]
    # Parabolic refinement of the peak for sub-frame period accuracy.
    if 1 <= lag_i < len(ac) - 1:
        y0, y1, y2 = ac[lag_i - 1], ac[lag_i], ac[lag_i + 1]
        denom = y0 - 2 * y1 + y2
        shift = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
    else:
        shift = 0.0
    period = (lag_i + float(np.clip(shift, -0.5, 0.5))) * dt
    confidence = float(ac[lag_i])
    if confidence < 0.1:
        return TempoEstimate(None, confidence, onsets)
    # Phase: the offset whose beat comb collects the most onset strength.
    steps = max(int(round(period / dt)), 1)
    t = np.arange(len(env)) * dt
    phases = np.arange(steps) * dt
    comb = np.array([env[np.minimum(np.rint((np.arange(ph, t[-1], period)) / dt).astype(int), len(env) - 1)].sum()
                     for ph in phases])
    phase = float(phases[int(np.argmax(comb))])
    bpm = 60.0 / period
    # Grid units are quarter notes here: the estimate is a beat period, not a notated value.
    return TempoEstimate(Grid(bpm=bpm, num=num, den=4, downbeat=phase), confidence, onsets)
