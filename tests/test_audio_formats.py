"""Odd but real files through a real `segue serve` (dsp): length, rate, channels, timing, source untouched.

Timing: the output of a 1-bar inpaint is cross-correlated with the audio the test wrote at that
place (before any codec). The groove repeats every 4 bars, so the dsp backend's best donor is the
identical bar 4 bars on: a decoder that kept an MP3's encoder delay (1105 samples at 44.1 kHz)
shows up as a lag.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

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


def _one_read(path) -> np.ndarray:
    """The whole file in one libsndfile call: what a player hears (pedalboard and ffmpeg agree)."""
    return sf.read(str(path), dtype="float32", always_2d=True)[0].T


@pytest.mark.parametrize("resume", [65536 * 2 + 500, 65536 * 2 + 2000, 65536 * 2 + 3500])
def test_mp3_after_digital_silence_reads_as_one_decode(tmp_path, resume):
    """libsndfile's MP3 decoder loses the bit reservoir when a read call ends in the frames before a
    hit that follows digital silence: 65536-frame reads decoded the hit as near-silence (0.18-0.66
    off). The reader, whole or by window, gives what one decode gives."""
    sr = 44100
    x = (np.random.default_rng(resume).standard_normal((2, resume + 2 * sr)) * 0.2).astype(np.float32)
    x[:, int(1.5 * sr):resume] = 0.0
    p = tmp_path / "gap.mp3"
    sf.write(str(p), np.ascontiguousarray(x.T), sr, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT")
    ref = _one_read(p)
    assert np.abs(ref[:, resume + 100:resume + 4000]).max() > 0.3           # the hit is there in one decode
    whole = SourceReader().read(str(p)).audio
    assert whole.shape == ref.shape and np.array_equal(whole, ref)
    f = SourceReader(whole_decode_bytes=0).open(str(p))                     # windows decoded from the start
    assert not f.seekable and f.whole is None
    lo, hi = resume - 20000, resume + 20000
    assert np.array_equal(f.window(lo, hi), ref[:, lo:hi])


@pytest.mark.parametrize("fmt,subtype,ext,seconds", [("FLAC", "PCM_16", "flac", 60), ("OGG", "VORBIS", "ogg", 120),
                                                     ("OGG", "OPUS", "opus", 120)])
def test_mostly_silent_compressed_files_are_read_whole(tmp_path, fmt, subtype, ext, seconds):
    """A stem that is mostly digital silence packs 130-340 frames into a byte of FLAC, Vorbis or Opus:
    more than the allocation bound, which used to cut it short (a 60 s FLAC read as 26 s) or call it
    damaged. Its whole length is read, whole and by window, and its clicks stay where they are."""
    sr = 48000 if subtype == "OPUS" else 44100
    x = np.zeros((1, seconds * sr), np.float32)
    clicks = [5 * sr, (seconds - 10) * sr]
    for c in clicks:
        x[0, c:c + 32] = 0.9
    p = tmp_path / f"stem.{ext}"
    with sf.SoundFile(str(p), "w", sr, 1, format=fmt, subtype=subtype) as f:
        for i in range(0, x.shape[1], 16384):       # libsndfile's Vorbis writer crashes on one huge write
            f.write(x[0, i:i + 16384])
    assert p.stat().st_size * 128 < x.shape[1]                            # denser than the bound
    for reader in (SourceReader(), SourceReader(whole_decode_bytes=0)):
        f = reader.open(str(p))
        assert f.frames == x.shape[1], (reader.whole_decode_bytes, f.frames)
        for c in clicks:
            w = f.window(c - sr // 10, c + sr // 10)
            assert abs(int(np.argmax(np.abs(w[0]))) - sr // 10) < 40, (c, int(np.argmax(np.abs(w[0]))))
    assert SourceReader().read(str(p)).frames == x.shape[1]


def test_a_few_samples_and_the_last_sample_at_a_lower_rate(engine, tmp_path):
    """A 10-sample source gets a clean reply, not dsp's IndexError; the last sample of a 44.1 kHz file,
    asked at 22.05 kHz, rounds half a sample past the end and is served, one sample long."""
    sr = 44100
    tiny = tmp_path / "ten.wav"
    sf.write(str(tiny), (np.arange(20).reshape(10, 2) / 40).astype(np.float32), sr, subtype="FLOAT")
    out = call(engine, "/segue/inpaint", [str(tiny), 0.0, 1 / sr])
    assert out.final.address == "/segue/done", out.final.args
    four = tmp_path / "four.wav"
    sf.write(str(four), (np.random.default_rng(0).standard_normal((4 * sr, 2)) * 0.1).astype(np.float32), sr,
             subtype="FLOAT")
    out = call(engine, "/segue/inpaint", [str(four), 4.0 - 1 / sr, 4.0], sr=22050)
    assert out.final.address == "/segue/done", out.final.args
    y, out_sr = sf.read(out.final.args[1], dtype="float32", always_2d=True)
    assert out_sr == 22050 and y.shape == (1, 2)


def test_outputs_as_many_samples_as_channels_and_long_non_ascii_names(engine, tmp_path):
    """A 2-sample stereo output is a square array, which the WAV writer could not orient; a source
    and an id of 4-byte characters made a file name over 255 bytes. Both are written and read back."""
    sr = 44100
    x = (np.random.default_rng(1).standard_normal((2 * sr, 2)) * 0.1).astype(np.float32)
    src = tmp_path / ("\U00020000" * 45 + ".wav")
    sf.write(str(src), x, sr, subtype="FLOAT")
    for start, n in ((1.0, 2), (0.5, 3)):
        out = call(engine, "/segue/inpaint", [str(src), start, start + n / sr])
        assert out.final.address == "/segue/done", out.final.args
        y, _ = sf.read(out.final.args[1], dtype="float32", always_2d=True)
        assert y.shape == (n, 2)
    with engine.client() as c:
        out = c.call("/segue/inpaint", request_args("\U00020001" * 30, [str(src), 1.0, 1.5], {}), timeout=120)
    assert out.final.address == "/segue/done", out.final.args
    assert len(Path(out.final.args[1]).name.encode("utf-8")) <= 255


def test_a_source_the_engine_may_not_read_is_named_as_such(tmp_path, monkeypatch):
    """Run as another user, the engine said "does not seem to contain audio data" for a file it may not
    read and "does not exist" for one inside a folder it may not enter (these tests run as root, so
    the denials are played by the os calls)."""
    import segue.engine.audio_io as audio_io
    from segue.engine.errors import SegueError

    p = tmp_path / "private.wav"
    sf.write(str(p), np.zeros((100, 2), np.float32), 44100)
    monkeypatch.setattr(audio_io.os, "access", lambda path, mode: False)
    with pytest.raises(SegueError, match="permission denied .*cannot read it") as e:
        audio_io.check_source_path(str(p))
    assert e.value.code == "source_unreadable"
    monkeypatch.undo()

    def denied(path, *a, **k):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(audio_io.os, "stat", denied)
    with pytest.raises(SegueError, match="permission denied .*cannot be entered") as e:
        audio_io.check_source_path(str(p))
    assert e.value.code == "source_unreadable"


def _without_first_frame(data: bytes) -> bytes:
    """An MP3 with its first frame (the one carrying the Xing/Info tag) cut out."""
    from segue.engine.mp3_frames import _audio_start, _header
    i = _audio_start(data)
    while _header(data, i) is None:
        i += 1
    return data[:i] + data[i + _header(data, i)[0]:]


def test_a_vbr_mp3_without_its_xing_header_is_refused_by_name(engine, tmp_path):
    """Without the tag libsndfile estimates the length from the first frame's bitrate and decodes no
    further: 13 s read as 3.4 s, so a region at 11 s was 'outside the file'. It is refused, naming
    both lengths; the same file with its tag is read whole."""
    sr = 44100
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal((2 * sr, 2)) * 0.5, np.zeros((10 * sr, 2)),
                        rng.standard_normal((sr, 2)) * 0.3]).astype(np.float32)   # loud first: a high first bitrate
    tagged, bare = tmp_path / "vbr.mp3", tmp_path / "vbr_bare.mp3"
    sf.write(str(tagged), x, sr, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="VARIABLE", compression_level=0.0)
    bare.write_bytes(_without_first_frame(tagged.read_bytes()))
    assert sf.info(str(bare)).duration < 6                          # the decoder's short estimate
    assert probe(str(tagged))[0] == pytest.approx(13.0, abs=0.1)
    assert SourceReader().read(str(tagged)).frames == 13 * sr
    out = call(engine, "/segue/inpaint", [str(bare), 11.0, 11.5])
    assert out.final.address == "/segue/error" and out.final.args[1] == "source_unreadable", out.final.args
    assert "without a Xing/Info header" in out.final.args[2] and "hold 13.0 s" in out.final.args[2]


def _mask_at(data: bytes) -> tuple[int, int]:
    """(offset of dwChannelMask, its value) in a WAVE_FORMAT_EXTENSIBLE fmt chunk (test's own reading)."""
    i = data.find(b"fmt ")
    assert int.from_bytes(data[i + 8:i + 10], "little") == 0xFFFE
    return i + 8 + 20, int.from_bytes(data[i + 28:i + 32], "little")


@pytest.mark.parametrize("channels,mask", [(6, 0x60F), (6, 0x0), (4, 0x33), (8, 0x63F)])
def test_a_surround_source_keeps_its_speaker_layout(engine, tmp_path, channels, mask):
    """The output's channel mask was the writer's default (5.1 with side surrounds came back with back
    surrounds; an unassigned 8-channel file came back as 7.1)."""
    sr = 48000
    x = (np.random.default_rng(channels).standard_normal((2 * sr, channels)) * 0.1).astype(np.float32)
    src = tmp_path / f"surround_{channels}_{mask:x}.wav"
    sf.write(str(src), x, sr, format="WAVEX", subtype="PCM_24")
    data = bytearray(src.read_bytes())
    at, _ = _mask_at(bytes(data))
    data[at:at + 4] = mask.to_bytes(4, "little")
    src.write_bytes(bytes(data))
    out = call(engine, "/segue/inpaint", [str(src), 0.5, 1.0])
    assert out.final.address == "/segue/done", out.final.args
    got = Path(out.final.args[1]).read_bytes()
    assert _mask_at(got)[1] == mask
    y, _ = sf.read(out.final.args[1], dtype="float32", always_2d=True)
    assert y.shape == (sr // 2, channels)


def test_an_mp3_window_late_in_a_long_file_reads_the_window_not_the_file(tmp_path):
    """Decoded from the start (MP3 cannot seek exactly), the frames before a window are read in blocks
    and dropped; only the window (plus a settling margin) is read in one call, so a window near the
    end of a long MP3 costs the window's memory, not the file's, and equals one whole decode."""
    import tracemalloc

    sr = 44100
    x = (np.random.default_rng(7).standard_normal((120 * sr, 2)) * 0.1).astype(np.float32)
    x[60 * sr:100 * sr] = 0.0                                            # silence: reservoir boundaries
    p = tmp_path / "long.mp3"
    sf.write(str(p), x, sr, format="MP3", subtype="MPEG_LAYER_III")
    ref = _one_read(p)
    f = SourceReader(whole_decode_bytes=0).open(str(p))
    lo, hi = 100 * sr - 4000, 101 * sr
    tracemalloc.start()
    w = f.window(lo, hi)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(w, ref[:, lo:hi])
    assert peak < 12 << 20, peak          # the whole file decoded would be 42 MB


def test_a_flac_cut_short_is_read_up_to_the_cut(engine, tmp_path):
    """An interrupted copy: the header states 10 s, the bytes hold ~9.5 s. A DAW plays the part that
    is there; the engine refused the whole file ("flac decoder lost sync") for a backend reading all
    of it. A span before the cut is served; one after it is bad_region naming the length the file
    holds, the same before and after the short decode is cached."""
    import re

    sr = 44100
    x = (np.random.default_rng(5).standard_normal((10 * sr, 2)) * 0.1).astype(np.float32)
    full, cut = tmp_path / "full.flac", tmp_path / "cut.flac"
    sf.write(str(full), x, sr, subtype="PCM_16")
    data = full.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.95)])
    before = sha(cut)
    lengths = []
    for start, end in ((9.8, 9.9), (2.0, 3.0), (9.8, 9.9)):
        out = call(engine, "/segue/inpaint", [str(cut), start, end])
        if start == 2.0:
            assert out.final.address == "/segue/done", out.final.args
            y, _ = sf.read(out.final.args[1], dtype="float32", always_2d=True)
            assert y.shape == (sr, 2)
            continue
        assert out.final.address == "/segue/error" and out.final.args[1] == "bad_region", out.final.args
        lengths.append(re.search(r"\(([0-9.]+) s long", out.final.args[2]).group(1))
    assert lengths[0] == lengths[1] and 8.0 < float(lengths[0]) < 9.8, lengths
    assert sha(cut) == before
