"""The engine reads only the window a backend needs (issue 8, fault 5): a window of an opened source
equals the same samples of the whole decoded (and resampled) file, the Task's positions, regions and
grid are shifted into the window, and a source that fits in the window gives the same result as the
whole source did."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from segue.bridge.client import request_args
from conftest import groove
from segue.engine.audio_io import SourceReader
from segue.engine.backends.base import Capabilities, JobContext, Task
from segue.engine.backends.dsp import DspBackend
from segue.engine.request import Request
from segue.engine.timeline import Grid
from segue.engine.validate import context_window, make_task


def noise_file(path, seconds, sr, channels=2, subtype="FLOAT", seed=0):
    x = (np.random.default_rng(seed).standard_normal((int(seconds * sr), channels)) * 0.1).astype(np.float32)
    sf.write(str(path), x, sr, subtype=subtype)
    return str(path)


@pytest.mark.parametrize("ext,subtype", [("wav", "FLOAT"), ("flac", "PCM_16"), ("aiff", "PCM_24")])
@pytest.mark.parametrize("sr", [None, 44100, 96000])
def test_window_equals_the_whole_read(tmp_path, ext, subtype, sr):
    src = noise_file(tmp_path / f"a.{ext}", 4.17, 48000, subtype=subtype)
    whole = SourceReader().read(src, sr).audio
    f = SourceReader().open(src, sr)
    assert f.whole is None                                     # seekable: nothing decoded yet
    assert f.frames == whole.shape[1] and f.channels == 2
    n = f.frames
    for lo, hi in [(0, 5000), (12345, 67890), (n - 3001, n), (n // 2, n + 10), (0, n)]:
        w = f.window(lo, hi)
        np.testing.assert_array_equal(w, whole[:, lo:min(hi, n)])


@pytest.mark.parametrize("fmt,subtype", [("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_compressed_sources_window_the_same(tmp_path, fmt, subtype):
    src = str(tmp_path / f"a.{fmt.lower()}")
    sf.write(src, groove(6.0, 48000).T, 48000, format=fmt, subtype=subtype)
    for sr in (None, 44100):
        whole = SourceReader().read(src, sr).audio
        short = SourceReader().open(src, sr)                  # short: decoded whole, as before windows
        assert short.whole is not None and short.frames == whole.shape[1]
        np.testing.assert_array_equal(short.window(1000, 9000), whole[:, 1000:9000])
        long = SourceReader(whole_decode_bytes=0).open(src, sr)   # long: counted, then decoded per window
        assert long.whole is None and not long.seekable and long.frames == whole.shape[1]
        n = long.frames
        for lo, hi in [(0, 5000), (70000, 150000), (n - 3001, n + 5)]:
            np.testing.assert_array_equal(long.window(lo, hi), whole[:, lo:min(hi, n)])


def test_task_is_shifted_into_the_window(tmp_path):
    sr = 8000
    src = noise_file(tmp_path / "long.wav", 100.0, sr, channels=1)
    whole = SourceReader().read(src).audio
    caps = Capabilities(inpaint=True, continue_=True, generate=False, max_context_seconds=20.0)
    grid_in = dict(bpm=120.0, downbeat=0.25)
    req = Request(kind="inpaint", id="w", src=src, start=50.0, end=54.0, regions=[(51.0, 52.0)], **grid_in)
    task = make_task(req, SourceReader().open(src), caps=caps).task
    lo = 30 * sr
    assert context_window("inpaint", 50 * sr, 4 * sr, whole.shape[1], sr, caps) == (lo, 74 * sr)
    np.testing.assert_array_equal(task.audio, whole[:, lo:74 * sr])
    assert task.start_sample == 20 * sr and task.frames == 4 * sr and task.regions == [(21 * sr, sr)]
    assert task.grid.downbeat == pytest.approx(0.25 - 30.0)     # the same bar lines on the timeline
    assert task.window_start == lo and len(task.source_key) == 32   # content key; caches add window_start
    cont = Request(kind="continue", id="c", src=src, at=80.0, bars=1, **grid_in)
    ctask = make_task(cont, SourceReader().open(src), caps=caps).task
    np.testing.assert_array_equal(ctask.audio, whole[:, 60 * sr:80 * sr])
    assert ctask.start_sample == 20 * sr
    # no limit: the whole source, positions as they are
    full = make_task(req, SourceReader().open(src), caps=None).task
    assert full.start_sample == 50 * sr and full.audio.shape[1] == whole.shape[1]


def test_windowed_dsp_equals_dsp_on_the_window(tmp_path):
    """Through a real engine on a source longer than dsp's window: the result is what dsp gives on
    exactly that window of the whole decoded file (positions and grid shifted by hand)."""
    from conftest import start_engine, stop_engine

    sr = 8000
    x = groove(150.0, sr, channels=1, seed=3)
    x[:, 70 * sr:] *= 0.8
    src = tmp_path / "allowed" / "long.wav"
    src.parent.mkdir(exist_ok=True)
    sf.write(str(src), x.T, sr, subtype="FLOAT")
    a, L = 75 * sr, 4 * sr
    eng = start_engine(tmp_path, "--log-level", "warning")
    try:
        with eng.client() as c:
            out = c.call("/segue/inpaint", request_args(f"w{time.monotonic_ns()}", [str(src), 75.0, 79.0],
                                                         {"bpm": 120.0, "seed": 2}), timeout=180)
    finally:
        stop_engine(eng)
    assert out.final.address == "/segue/done", out.final.args
    got = sf.read(out.final.args[1], dtype="float32", always_2d=True)[0].T
    lo, hi = a - 60 * sr, a + L + 60 * sr
    task = Task(kind="inpaint", sr=sr, channels=1, start_sample=a - lo, frames=L, audio=x[:, lo:hi],
                grid=Grid(120.0, downbeat=-lo / sr), seed=2)
    np.testing.assert_array_equal(got, DspBackend().inpaint(task, JobContext())[0])


def test_a_source_that_fits_gives_todays_result(engine, tmp_path):
    """A source inside dsp's window: the engine's result equals dsp on the whole source, as before windows."""
    sr = 22050
    x = groove(20.0, sr, seed=5)
    src = str(tmp_path / "short.wav")
    sf.write(src, x.T, sr, subtype="FLOAT")
    for opts, kind, pos in [({"bpm": 120.0}, "inpaint", [src, 8.0, 10.0]), ({}, "inpaint", [src, 8.0, 10.0]),
                            ({"bpm": 120.0}, "continue", [src, 12.0])]:
        with engine.client() as c:
            if kind == "continue":
                out = c.call("/segue/continue", request_args(f"f{time.monotonic_ns()}", pos + [1], {"bpm": 120.0}),
                             timeout=180)
            else:
                out = c.call("/segue/inpaint", request_args(f"f{time.monotonic_ns()}", pos, opts), timeout=180)
        assert out.final.address == "/segue/done", out.final.args
        got = sf.read(out.final.args[1], dtype="float32", always_2d=True)[0].T
        if kind == "continue":
            task = Task(kind="continue", sr=sr, channels=2, start_sample=12 * sr, frames=int(2.0 * sr),
                        audio=x[:, :12 * sr], grid=Grid(120.0))
            want = DspBackend().continue_(task, JobContext())[0]
        else:
            task = Task(kind="inpaint", sr=sr, channels=2, start_sample=8 * sr, frames=2 * sr, audio=x,
                        grid=Grid(120.0) if opts else None)
            want = DspBackend().inpaint(task, JobContext())[0]
        np.testing.assert_array_equal(got, want)
