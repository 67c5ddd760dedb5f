"""From generated audio at the model's rate back to the project: rate, level, paste, joins.

    y = from_model_rate(y_model, g0, model_sr, task.sr, task.start_sample, task.frames, task.channels)
    out = paste_regions(y, task.audio, task.start_sample, regions, fade)      # inpaint
    out = bend_into(y, task.audio, fade)                                      # continue

Outside the regenerated regions the output is the source itself, copied
(bit-identical). Inside each region the first and last `fade` samples fade
from (and back to) an AR extrapolation of the source with an equal-power
crossfade (engine/seams.py's `join_source`, the one edge join every backend
uses), so the region's old audio never leaks in and no edge clicks. The level
of generated audio is matched to the source where both exist (outside the
regions, inside the decoded range) before pasting.
"""

from __future__ import annotations

import math

import numpy as np

from ...audio_io import resample

from ...seams import join_source


def level_gain(generated: np.ndarray, source: np.ndarray, lo: float = 0.25, hi: float = 4.0,
               min_samples: int = 256) -> float:
    """RMS(source) / RMS(generated) over the same samples (both (C, n)), clamped to [lo, hi];
    1.0 when there are fewer than min_samples or either side is silent."""
    if generated.shape[-1] < min_samples:
        return 1.0
    rs = float(np.sqrt(np.mean(np.square(source, dtype=np.float64))))
    rg = float(np.sqrt(np.mean(np.square(generated, dtype=np.float64))))
    if rs < 1e-5 or rg < 1e-5:
        return 1.0
    return float(np.clip(rs / rg, lo, hi))


def outside_mask(first: int, n: int, regions: list[tuple[float, float]], limit: int) -> np.ndarray:
    """(n,) bool over samples first..first+n-1: True outside every [a, b) region and below `limit`."""
    idx = np.arange(first, first + n)
    m = idx < limit
    for a, b in regions:
        m &= ~((idx >= a) & (idx < b))
    return m


def from_model_rate(y_model: np.ndarray, g0: int, model_sr: int, sr: int, start_sample: int, frames: int,
                    channels: int) -> np.ndarray:
    """y_model (2, L) starting at model sample g0 -> (channels, frames) at `sr` starting at `start_sample`.

    Resampling starts on a sample both rates share (so the result sits exactly on the task's grid);
    short ends are padded with the edge value; mono is the channel mean, extra channels repeat the last.
    """
    step = model_sr // math.gcd(model_sr, sr)
    g0a = (g0 // step) * step
    y = np.pad(y_model, ((0, 0), (g0 - g0a, 0)))
    y = resample(np.ascontiguousarray(y, dtype=np.float32), model_sr, sr)
    first = g0a * sr // model_sr
    off = start_sample - first
    if off < 0:
        y = np.pad(y, ((0, 0), (-off, 0)), mode="edge")
        off = 0
    out = y[:, off: off + frames]
    if out.shape[-1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[-1])), mode="edge")
    out = np.array(out, dtype=np.float32)
    if channels == 1:
        out = out.mean(axis=0, keepdims=True)
    elif channels > 2:
        out = np.concatenate([out, np.repeat(out[-1:], channels - 2, axis=0)])
    return out


def fade_length(seconds: float, sr: int, region_frames: int) -> int:
    """Crossfade samples: seconds * sr, at most a quarter of the region (at least 1)."""
    return max(1, min(int(round(seconds * sr)), region_frames // 4)) if region_frames >= 4 else region_frames


def paste_regions(y: np.ndarray, audio: np.ndarray, start_sample: int, regions: list[tuple[int, int]],
                  fade_seconds: float, sr: int) -> np.ndarray:
    """The output span [start_sample, start_sample + y.shape[1]) of `audio` with each region
    (start_sample, frames), absolute in `audio`, taken from `y` and joined at both edges.

    y: (C, n) generated audio covering the span; audio: (C, N) the source. Returns (C, n) float32;
    samples outside the regions are copied from the source unchanged."""
    n = y.shape[-1]
    out = np.array(audio[:, start_sample: start_sample + n], dtype=np.float32)
    if out.shape[-1] < n:
        out = np.pad(out, ((0, 0), (0, n - out.shape[-1])))
    for a, length in regions:
        r0, r1 = a - start_sample, a - start_sample + length
        piece = np.array(y[:, r0:r1], dtype=np.float32)
        join_source(piece, audio, a, fade_length(fade_seconds, sr, length))
        out[:, r0:r1] = piece
    return out


def warm_paste(sr: int = 44100, channels: int = 2) -> None:
    """Run `paste_regions` once on 0.2 s of a test tone so the first request does not pay for first use
    (the seam's AR extrapolation imports scipy.signal lazily: 0.4 s on a quiet 2-core machine, ~1 s
    under load, measured in the first sa3-small edit; bench notes in docs/benchmarks.md)."""
    n = int(0.2 * sr)
    t = np.arange(n, dtype=np.float32) / sr
    audio = np.repeat((0.1 * np.sin(2 * np.pi * 220 * t))[None], channels, axis=0).astype(np.float32)
    paste_regions(audio * 0.5, audio, 0, [(n // 4, n // 2)], 0.005, sr)


def bend_into(y: np.ndarray, audio: np.ndarray, fade: int) -> np.ndarray:
    """Continuation: bend y's first `fade` samples (a decaying offset) so it continues the source's
    last sample and slope. y (C, n) is changed in place and returned."""
    if audio is None or audio.shape[-1] < 2 or fade < 1:
        return y
    last, slope = audio[:, -1], audio[:, -1] - audio[:, -2]
    err = (last + slope) - y[:, 0]
    f = np.cos(np.linspace(0, np.pi / 2, min(fade, y.shape[-1]), dtype=np.float32)) ** 2
    y[:, :f.size] += err[:, None] * f[None]
    return y
