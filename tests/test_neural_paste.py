"""neural/paste.py: bit-identical paste outside regions, joins, level, rates."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from segue.engine.backends.neural.paste import (bend_into, fade_length, from_model_rate, level_gain, outside_mask,
                                          paste_regions)


def noise(c, n, seed=0, scale=0.3):
    return (np.random.default_rng(seed).standard_normal((c, n)) * scale).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 2000), n=st.integers(400, 4000), cuts=st.lists(st.integers(0, 100), min_size=2,
       max_size=6, unique=True), seed=st.integers(0, 10))
def test_outside_regions_bit_identical(start, n, cuts, seed):
    audio = noise(2, 8000, seed)
    n = min(n, 8000 - start)
    cuts = sorted(c * n // 101 for c in cuts)
    regions = [(start + a, b - a) for a, b in zip(cuts[::2], cuts[1::2]) if b - a >= 4]
    y = noise(2, n, seed + 1, 0.5)
    out = paste_regions(y, audio, start, regions, 0.001, 48000)
    assert out.shape == (2, n) and out.dtype == np.float32
    inside = np.zeros(n, bool)
    for a, k in regions:
        inside[a - start: a - start + k] = True
        fade = fade_length(0.001, 48000, k)
        mid = slice(a - start + fade, a - start + k - fade)
        np.testing.assert_array_equal(out[:, mid], y[:, mid])      # generated inside, past the fades
    np.testing.assert_array_equal(out[:, ~inside], audio[:, start:start + n][:, ~inside])


def test_join_fades_from_the_source_not_the_region():
    sr = 48000
    t = np.arange(9600) / sr
    audio = np.stack([np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    audio[:, 4000:5000] += 0.9                                        # the old hit, must not leak in
    y = np.zeros((2, 2000), np.float32)
    out = paste_regions(y, audio, 3500, [(3800, 1400)], 0.003, sr)
    # first sample of the region continues the sine (AR extrapolation), not y's silence
    assert abs(out[0, 300] - audio[0, 3800]) < 0.05
    assert np.abs(out[:, 300 + 144:300 + 1400 - 144]).max() == 0.0  # middle is y
    assert np.abs(out[:, 300:300 + 1400]).max() < 1.0                # no trace of the +0.9 hit


def test_level_gain_and_mask():
    ref = noise(2, 1000, 1, 0.4)
    assert abs(level_gain(ref * 0.5, ref) - 2.0) < 1e-6
    assert level_gain(ref * 100, ref) == 0.25 and level_gain(ref[:, :10], ref[:, :10]) == 1.0
    assert level_gain(np.zeros((2, 1000), np.float32), ref) == 1.0
    m = outside_mask(100, 10, [(102, 104), (107, 108)], limit=109)
    assert m.tolist() == [True, True, False, False, True, True, True, False, True, False]


def test_from_model_rate_lands_on_the_task_grid():
    # a ramp at 44.1 kHz whose value is its own time: after resampling, sample k at 48 kHz ~ k / 48000 s
    model_sr, sr = 44100, 48000
    g0 = 4096 * 3
    n = 44100
    y_model = np.stack([(g0 + np.arange(n)) / model_sr] * 2).astype(np.float32)
    start, frames = int(round(g0 * sr / model_sr)) + 1000, 20000
    out = from_model_rate(y_model, g0, model_sr, sr, start, frames, 1)
    assert out.shape == (1, frames)
    want = (start + np.arange(frames)) / sr
    assert np.abs(out[0, 200:-200] - want[200:-200]).max() < 1e-3
    assert from_model_rate(y_model, g0, model_sr, sr, start, frames, 3).shape == (3, frames)


def test_bend_into_continues_the_last_sample():
    src = np.array([[0.0, 0.1, 0.2]], np.float32)
    y = np.zeros((1, 100), np.float32)
    bend_into(y, src, 30)
    assert abs(y[0, 0] - 0.3) < 1e-6 and y[0, 40] == 0.0


def test_warm_paste_imports_the_seam_lazily_needed_modules():
    import subprocess
    import sys

    code = ("import sys; from segue.engine.backends.neural.paste import warm_paste; "
            "assert 'scipy.signal' not in sys.modules; warm_paste(); assert 'scipy.signal' in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
