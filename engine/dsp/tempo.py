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


def frame_params(sr: int) -> tuple[int, int]:
    """(hop, FFT size) in samples of the onset-strength frames at rate sr."""
    hop = max(int(round(HOP_SECONDS * sr)), 1)
    return hop, 1 << int(np.ceil(np.log2(4 * hop)))


def frame_count(n: int, sr: int) -> int:
    """Frames lying wholly inside n samples."""
    hop, n_fft = frame_params(sr)
    return max((n - n_fft) // hop + 1, 0)


def raw_flux(audio: np.ndarray, sr: int, f0: int, f1: int, chunk: int = 256) -> np.ndarray:
    """Half-wave rectified spectral flux of log magnitudes for frames [f0, f1) of audio (channels, n)
    (or (n,)); frame i covers samples [i * hop, i * hop + n_fft) of the channel mean; frame 0 has no
    predecessor and reads 0. Depends only on the audio at those frames, so blocks of it can be cached
    and joined. Memory: `chunk` frames at a time (~2 MB at 48 kHz), whatever the span.
    """
    x = audio if audio.ndim == 2 else audio[None]
    hop, n_fft = frame_params(sr)
    f1 = min(f1, frame_count(x.shape[1], sr))
    out = np.zeros(max(f1 - f0, 0))
    if f1 <= f0:
        return out
    win = np.hanning(n_fft)
    prev = None
    first = max(f0 - 1, 0)
    for c0 in range(first, f1, chunk):
        c1 = min(c0 + chunk, f1)
        seg = x[:, c0 * hop:(c1 - 1) * hop + n_fft].mean(axis=0, dtype=np.float64)
        idx = np.arange(c1 - c0)[:, None] * hop + np.arange(n_fft)[None, :]
        logs = np.log1p(100.0 * np.abs(np.fft.rfft(seg[idx] * win, axis=1)))
        full = logs if prev is None else np.concatenate([prev[None], logs])
        flux = np.maximum(np.diff(full, axis=0), 0.0).sum(axis=1)
        frames = np.arange(c0 + (1 if prev is None else 0), c1)
        keep = frames >= f0
        out[frames[keep] - f0] = flux[keep]
        prev = logs[-1]
    return out


def detrend(flux: np.ndarray) -> np.ndarray:
    """Onset strength from raw flux: slow loudness changes removed, half-wave rectified."""
    env = flux - np.convolve(flux, np.ones(15) / 15, mode="same")
    return np.maximum(env, 0.0)


def onset_strength(mono: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """(onset strength per frame, frame hop in seconds) of a 1-D signal."""
    hop, _ = frame_params(sr)
    n = frame_count(len(mono), sr)
    if n < 8:
        return np.zeros(0), hop / sr
    return detrend(raw_flux(mono, sr, 0, n)), hop / sr


def estimate(mono: np.ndarray, sr: int, num: int = 4, den: int = 4) -> TempoEstimate:
    """Tempo, beat phase and onsets of a 1-D signal (times in seconds from its first sample)."""
    env, dt = onset_strength(mono, sr)
    return estimate_from_strength(env, dt, num)


def estimate_from_strength(env: np.ndarray, dt: float, num: int = 4) -> TempoEstimate:
    """The estimate from an onset-strength curve with frames every dt seconds (time 0 = frame 0)."""
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
