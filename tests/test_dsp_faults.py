"""Issue 11's faults as tests: rate without sr after a cached request, tempo per region, distinct
takes, loudness and peaks, hit replace vs remove, multi-region inpaint, check() in long reads,
channel upmix and resampled lengths. Engine round trips go through a real `segue serve` (dsp)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import soundfile as sf

from segue.bridge.client import request_args
from conftest import groove, start_engine, stop_engine
from segue.engine.audio_io import SourceReader, match_channels, resample, resampled_length
from segue.engine.backends.base import JobContext, Task
from segue.engine.backends.dsp import DspBackend
from segue.engine.dsp.takes import count_distinct, distinct
from segue.engine.errors import Cancelled
from segue.engine.timeline import Grid, round_half_up


def call(engine, address, positional, **opts):
    with engine.client() as c:
        return c.call(address, request_args(f"t{time.monotonic_ns()}", positional, opts), timeout=180)


def paths(out) -> list[str]:
    assert out.final.address == "/segue/done", out.final.args
    return [out.final.args[1]] + list(out.final.args[4:])


def load(p) -> np.ndarray:
    return sf.read(p, dtype="float32", always_2d=True)[0].T


def level_db(y) -> float:
    return 10 * np.log10(np.mean(np.square(y, dtype=np.float64)) + 1e-20)


def wav(path, x, sr, subtype="FLOAT"):
    sf.write(str(path), x.T, sr, subtype=subtype)
    return str(path)


# ---------------------------------------------------------------- rate and cache

def test_rate_without_sr_after_a_cached_sr_request(engine, tmp_path):
    src = wav(tmp_path / "hi.wav", groove(12.0, 96000), 96000, "PCM_24")
    copy = str(tmp_path / "hi copy.wav")
    shutil.copyfile(src, copy)                       # byte-identical: same content key
    a = call(engine, "/segue/inpaint", [src, 4.0, 6.0], bpm=120.0, sr=44100)
    assert a.final.args[3] == 44100 and load(paths(a)[0]).shape == (2, 88200)
    for p in (src, copy):
        b = call(engine, "/segue/inpaint", [p, 4.0, 6.0], bpm=120.0)
        assert b.final.args[3] == 96000 and load(paths(b)[0]).shape == (2, 192000)
        assert sf.info(paths(b)[0]).samplerate == 96000


def test_resampled_length_rounds_half_up():
    # n * 44100 / 96000 = k + 0.5 exactly for some n: round half up, not to even
    n = next(n for n in range(1, 10000) if (n * 44100) % 96000 == 48000)
    want = round_half_up(n * 44100 / 96000)
    assert want == (n * 44100) // 96000 + 1 and resampled_length(n, 96000, 44100) == want
    assert resample(np.ones((1, n), np.float32), 96000, 44100).shape == (1, want)


def test_check_runs_during_hash_decode_and_resample(tmp_path):
    src = wav(tmp_path / "long.wav", groove(30.0, 44100), 44100, "PCM_16")
    calls = []
    SourceReader().read(src, 48000, check=lambda: calls.append(1))
    assert len(calls) >= 10                         # hashing (1 MiB), decoding (64k frames) and resampling blocks

    def stop():
        calls.append(1)
        if len(calls) > 3:
            raise Cancelled()
    calls.clear()
    with pytest.raises(Cancelled):
        SourceReader().read(src, 48000, check=stop)


def test_upmix_to_more_channels():
    y = np.stack([np.full(4, 1.0), np.full(4, 2.0)]).astype(np.float32)
    up = match_channels(y, 6)
    assert up.shape == (6, 4) and list(up[:, 0]) == [1, 2, 1, 2, 1, 2]
    assert match_channels(y[:1], 3).shape == (3, 4)


# ---------------------------------------------------------------- tempo per region

def two_tempi(sr=22050) -> np.ndarray:
    a = groove(90.0, sr, bpm=100.0, channels=1)
    b = groove(90.0, sr, bpm=140.0, channels=1, seed=2)
    return np.concatenate([a, b], axis=1)


def test_tempo_is_estimated_per_region_whatever_came_before(tmp_path):
    sr = 22050
    src = wav(tmp_path / "tempi.wav", two_tempi(sr), sr)
    first = start_engine(tmp_path / "e1")
    fresh = start_engine(tmp_path / "e2")
    try:
        call(first, "/segue/inpaint", [src, 20.0, 22.0])               # looks at 100 BPM first
        late = call(first, "/segue/inpaint", [src, 150.0, 152.0])
        alone = call(fresh, "/segue/inpaint", [src, 150.0, 152.0])
        stage = [e.args[2] for e in late.events if e.address == "/segue/progress" and "BPM" in e.args[2]]
        bpm = float(stage[0].split("grid: ")[1].split(" BPM")[0])
        assert abs(bpm - 140.0) < 1.0, stage                          # the local tempo, not the cached 100
        np.testing.assert_array_equal(load(paths(late)[0]), load(paths(alone)[0]))
    finally:
        stop_engine(first)
        stop_engine(fresh)


# ---------------------------------------------------------------- takes

def test_variations_are_distinct_takes(engine, tmp_path):
    src = wav(tmp_path / "loop.wav", groove(24.0, 44100), 44100, "PCM_16")
    for args, opts in (([src, 6.0, 8.0], {}), ([src, 6.0, 6.05], {}), ([src, 7.3, 7.38], {})):
        out = call(engine, "/segue/inpaint", args, bpm=120.0, variations=4, seed=3, **opts)
        clips = [load(p) for p in paths(out)]
        assert count_distinct(clips) == len(clips)               # never duplicates
        assert len(clips) == 4, f"{args}: {len(clips)} takes"
    out = call(engine, "/segue/continue", [src, 16.0, 2.0], bpm=120.0, variations=4)
    clips = [load(p) for p in paths(out)]
    assert len(clips) == 4 and count_distinct(clips) == 4


def test_fewer_takes_when_no_more_exist(engine, tmp_path):
    src = wav(tmp_path / "quiet.wav", np.zeros((2, 44100 * 6), np.float32), 44100, "PCM_16")
    out = call(engine, "/segue/inpaint", [src, 2.0, 2.05], variations=4)
    assert len(paths(out)) == 1                                   # silence has one take, not 4 copies


# ---------------------------------------------------------------- level

def test_loudness_matches_and_peaks_stay_under_the_source(engine, tmp_path):
    sr = 44100
    quiet = groove(32.0, sr) * (0.33 / 0.5)                       # peak 0.33
    loud = groove(32.0, sr, seed=4)
    loud /= np.max(np.abs(loud))                                  # normalised: peak 1.0
    for name, x in (("quiet", quiet), ("loud", loud)):
        src = wav(tmp_path / f"{name}.wav", x, sr)
        for s, e in ((5.0, 7.0), (9.25, 10.25), (13.0, 17.0)):
            out = call(engine, "/segue/inpaint", [src, s, e], bpm=120.0, variations=2)
            a = round_half_up(s * sr)
            for p in paths(out):
                y = load(p)
                assert abs(level_db(y) - level_db(x[:, a:a + y.shape[1]])) < 1.5
                assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-6
        out = call(engine, "/segue/continue", [src, 20.0, 2.0], bpm=120.0)
        y = load(paths(out)[0])
        assert abs(level_db(y) - level_db(x[:, 20 * sr:22 * sr])) < 1.5
        assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-6


# ---------------------------------------------------------------- hits

def snare_case(sr=44100):
    x = groove(24.0, sr)
    t0 = 9 * sr                                 # bar 5, beat 3: a snare (bars of 2 s, snare at +1 s)
    a, L = t0 - int(0.010 * sr), int(0.090 * sr)
    return x, sr, t0, a, L


def hit_db(y, x, t0, a, sr) -> float:
    h1 = min(t0 + int(0.05 * sr), a + y.shape[1])
    return level_db(y[:, t0 - a:h1 - a]) - level_db(x[:, t0:h1])


def test_short_selection_over_a_hit_is_replaced_by_a_hit(engine, tmp_path):
    x, sr, t0, a, L = snare_case()
    src = wav(tmp_path / "snare.wav", x, sr)
    out = call(engine, "/segue/inpaint", [src, a / sr, (a + L) / sr], bpm=120.0)
    assert any("hit" in e.args[2] for e in out.events if e.address == "/segue/progress")
    y = load(paths(out)[0])
    assert y.shape == (2, L) and abs(hit_db(y, x, t0, a, sr)) < 3.0
    # aligned to the original onset: the envelope's attack lands within 1 ms of it
    env = np.abs(y).mean(axis=0)
    assert abs(int(np.argmax(env > 0.5 * env.max())) - (t0 - a)) <= sr // 1000


def test_hit_remove_interpolates_it_away():
    x, sr, t0, a, L = snare_case()
    b = DspBackend()
    task = Task(kind="inpaint", sr=sr, channels=2, start_sample=a, frames=L, audio=x, grid=Grid(120.0))
    keep = b.inpaint(task, JobContext())[0]
    task.hit = "remove"
    gone = b.inpaint(task, JobContext())[0]
    assert abs(hit_db(keep, x, t0, a, sr)) < 3.0
    assert hit_db(gone, x, t0, a, sr) < -10.0                    # the hit is gone


def test_hit_option_through_the_engine(engine, tmp_path):
    x, sr, t0, a, L = snare_case()
    src = wav(tmp_path / "snare2.wav", x, sr)
    kept = call(engine, "/segue/inpaint", [src, a / sr, (a + L) / sr], bpm=120.0)
    gone = call(engine, "/segue/inpaint", [src, a / sr, (a + L) / sr], bpm=120.0, hit="remove")
    assert abs(hit_db(load(paths(kept)[0]), x, t0, a, sr)) < 3.0    # default `replace`: the hit stays
    assert hit_db(load(paths(gone)[0]), x, t0, a, sr) < -10.0       # `remove`: interpolated away


# ---------------------------------------------------------------- regions

def test_multi_region_fills_only_the_regions():
    sr = 22050
    x = groove(24.0, sr, seed=7)
    x[:, 10 * sr:] *= 0.7                                         # not a pure repeat: fills must be chosen
    a, L = 4 * sr, 8 * sr
    regions = [(5 * sr, sr), (int(8.5 * sr), sr // 20), (10 * sr, 2 * sr)]
    task = Task(kind="inpaint", sr=sr, channels=2, start_sample=a, frames=L, audio=x, grid=Grid(120.0),
                regions=regions, variations=2, source_key="multi")
    outs = DspBackend().inpaint(task, JobContext())
    assert 1 <= len(outs) <= 2 and count_distinct(outs) == len(outs)
    mask = np.zeros(L, bool)
    for r0, rl in regions:
        mask[r0 - a:r0 - a + rl] = True
    for y in outs:
        assert y.shape == (2, L) and y.dtype == np.float32
        np.testing.assert_array_equal(y[:, ~mask], x[:, a:a + L][:, ~mask])     # bit-identical outside
    # each region holds what a single-region request for it gives
    for r0, rl in regions:
        one = DspBackend().inpaint(Task(kind="inpaint", sr=sr, channels=2, start_sample=r0, frames=rl, audio=x,
                                        grid=Grid(120.0), source_key="multi"), JobContext())[0]
        # the same except within the peak limiter's 5 ms smoothing at the ends, which sees the neighbours
        e = int(0.006 * sr)
        np.testing.assert_allclose(outs[0][:, r0 - a + e:r0 - a + rl - e], one[:, e:rl - e], atol=1e-6)
