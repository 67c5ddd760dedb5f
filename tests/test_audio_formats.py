"""Odd but real files through a real `segue serve` (dsp): length, rate, channels, timing, source untouched.

Timing: the output of a 1-bar inpaint is cross-correlated with the audio the test wrote at that
place (before any codec). The groove repeats every 4 bars, so the dsp backend's best donor is the
identical bar 4 bars on: a decoder that kept an MP3's encoder delay (1105 samples at 44.1 kHz)
shows up as a lag.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
import soundfile as sf

from audio_corpus import corpus
from segue.bridge.client import request_args
from segue.engine.audio_io import SourceReader, probe
from segue.engine.timeline import round_half_up

START, END = 4.0, 6.0       # bar 3 at 120 BPM; its twin is bar 7 (12-14 s)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return corpus(tmp_path_factory.mktemp("odd"))


def call(engine, address, positional, **opts):
    with engine.client() as c:
        return c.call(address, request_args(f"t{time.monotonic_ns()}", positional, opts), timeout=120)


def sha(p) -> str:
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def lag_of(y: np.ndarray, x: np.ndarray, a: int, max_lag: int) -> int:
    """Lag (samples) maximising the correlation of y (channels, L) with x around sample a."""
    L = y.shape[1]
    edge = L // 10                              # skip the crossfaded edges
    tpl = y[:, edge:L - edge].mean(axis=0).astype(np.float64)
    ref = x[:, a + edge - max_lag:a + L - edge + max_lag].mean(axis=0).astype(np.float64)
    corr = np.correlate(ref, tpl, mode="valid")       # index k <-> lag k - max_lag
    return int(np.argmax(corr)) - max_lag


NAMES = ["mp3_cbr_44k_stereo", "mp3_vbr_48k_mono", "mp3_vbr_44k_stereo", "mp3_cbr_48k_stereo",
         "streaming_sizes_wav", "cue_labels_wav", "comments_aiff", "wavex_float_96k", "pcm_u8", "mu_law",
         "six_channels", "opus_48k", "vorbis_44k", "flac_24", "nan_inf", "silence", "over_full_scale",
         "non_ascii_path"]


@pytest.mark.parametrize("name", NAMES)
def test_reader_is_gapless_and_honest(files, name):
    path, x, sr = files[name]
    src = SourceReader().read(str(path))
    assert src.sr == sr and src.channels == x.shape[0]
    assert src.frames == x.shape[1], f"{name}: decoded {src.frames} frames, wrote {x.shape[1]}"
    seconds, file_sr = probe(str(path))
    assert file_sr == sr and seconds == pytest.approx(x.shape[1] / sr, abs=1e-9)
    assert np.isfinite(src.audio).all()
    if name != "silence":   # every onset where it was written: the whole decoded file at lag 0
        m = x.shape[1] // 2
        assert lag_of(src.audio[:, m:m + sr], x, m, max_lag=2048) == 0


@pytest.mark.parametrize("name", NAMES)
def test_inpaint_through_engine(engine, files, name):
    path, x, sr = files[name]
    before = sha(path)
    out = call(engine, "/segue/inpaint", [str(path), START, END], bpm=120.0, sig="4/4")
    assert out.final.address == "/segue/done", out.final.args
    y, out_sr = sf.read(out.final.args[1], dtype="float32", always_2d=True)
    y = y.T
    assert out_sr == sr == out.final.args[3]                      # no sr: the source's own rate
    assert y.shape == (x.shape[0], round_half_up((END - START) * sr))
    assert sha(path) == before                                     # the source is untouched
    a = round_half_up(START * sr)
    if name == "silence":
        assert np.max(np.abs(y)) < 1e-4
        return
    assert np.isfinite(y).all()
    assert lag_of(y, x, a, max_lag=int(0.03 * sr)) == 0, f"{name}: result is off the timeline"
    if name == "over_full_scale":
        assert 1.0 < np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-6   # kept above 0 dBFS, never past the source


def test_streaming_sizes_allocate_only_what_is_there(files):
    import tracemalloc
    path, x, sr = files["streaming_sizes_wav"]
    tracemalloc.start()
    src = SourceReader().read(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert src.frames == x.shape[1]
    assert peak < 3 * x.size * 4 + (8 << 20)      # the audio once (float32) plus blocks, not 8 GiB


def test_continue_mp3_lands_on_the_grid(engine, files):
    """A 1-bar continuation of the MP3 at 8 s equals the source's own next bar (the pattern repeats)."""
    path, x, sr = files["mp3_cbr_44k_stereo"]
    out = call(engine, "/segue/continue", [str(path), 8.0, 1.0], bpm=120.0, sig="4/4")
    assert out.final.address == "/segue/done", out.final.args
    y = sf.read(out.final.args[1], dtype="float32", always_2d=True)[0].T
    assert y.shape == (2, 2 * sr)
    assert lag_of(y, x, 8 * sr, max_lag=int(0.03 * sr)) == 0
