"""Odd but real audio files for the audio tests, written by the tests themselves.

numpy makes the audio (conftest.groove: a drum-and-bass pattern on an exact 120 BPM grid, with a
4-bar period so every bar has an identical twin 4 bars on); libsndfile (the `soundfile` package)
writes WAV/WAVEX/AIFF/FLAC/Ogg/MP3 the way other tools do, and the odd containers (streaming
sizes, cue and label chunks, AIFF comments) are built chunk by chunk here.
Each maker returns (path, the audio as written (channels, n) float32 before any lossy codec, rate).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import groove

SECONDS = 20.0


def _write(path: Path, x: np.ndarray, sr: int, **kw) -> Path:
    sf.write(str(path), x.T, sr, **kw)
    return path


def _chunk(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """RIFF sub-chunks of a WAV file's bytes (after the 12-byte header)."""
    out, i = [], 12
    while i + 8 <= len(data):
        tag, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        out.append((tag, data[i + 8:i + 8 + size]))
        i += 8 + size + (size & 1)
    return out


def mp3(d: Path, sr: int, channels: int, mode: str) -> tuple[Path, np.ndarray, int]:
    x = groove(SECONDS, sr, channels=channels)
    p = d / f"mp3_{mode.lower()}_{sr}_{channels}ch.mp3"
    with sf.SoundFile(str(p), "w", sr, channels, format="MP3", subtype="MPEG_LAYER_III", bitrate_mode=mode,
                      compression_level=0.5) as f:
        f.write(x.T)
    head = p.read_bytes()[:2048]
    assert (b"Info" if mode == "CONSTANT" else b"Xing") in head and b"LAME" in head   # the tag is there
    return p, x, sr


def streaming_wav(d: Path) -> tuple[Path, np.ndarray, int]:
    """RIFF and data sizes 0xFFFFFFFF, as tools streaming WAV to a pipe leave them."""
    sr = 44100
    x = groove(SECONDS, sr)
    tmp = _write(d / "tmp_stream.wav", x, sr, subtype="PCM_16")
    b = bytearray(tmp.read_bytes())
    tmp.unlink()
    i = b.find(b"data")
    b[4:8] = struct.pack("<I", 0xFFFFFFFF)
    b[i + 4:i + 8] = struct.pack("<I", 0xFFFFFFFF)
    p = d / "streaming_sizes.wav"
    p.write_bytes(bytes(b))
    return p, np.round(x * 32767) / 32768, sr


def wav_cue_labels(d: Path) -> tuple[Path, np.ndarray, int]:
    """A WAV with a cue chunk and a LIST/adtl of labels before the data, and a LIST/INFO after it."""
    sr = 48000
    x = groove(SECONDS, sr)
    tmp = _write(d / "tmp_cue.wav", x, sr, subtype="PCM_24")
    data = tmp.read_bytes()
    tmp.unlink()
    chunks = dict(_chunks(data))
    cue = struct.pack("<I", 2) + b"".join(struct.pack("<II4sIII", k + 1, pos, b"data", 0, 0, pos)
                                            for k, pos in enumerate((sr, 3 * sr)))
    labl = b"adtl" + _chunk(b"labl", struct.pack("<I", 1) + b"verse\0") + _chunk(b"labl", struct.pack("<I", 2) + b"chorus\0")
    info = b"INFO" + _chunk(b"INAM", b"cue test\0")
    body = b"WAVE" + _chunk(b"fmt ", chunks[b"fmt "]) + _chunk(b"cue ", cue) + _chunk(b"LIST", labl) \
        + _chunk(b"data", chunks[b"data"]) + _chunk(b"LIST", info)
    p = d / "cue_labels.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return p, x, sr


def aiff_comments(d: Path) -> tuple[Path, np.ndarray, int]:
    """AIFF (big-endian) with COMT and NAME chunks between COMM and SSND."""
    sr = 44100
    x = groove(SECONDS, sr)
    tmp = _write(d / "tmp.aiff", x, sr, format="AIFF", subtype="PCM_16")
    data = tmp.read_bytes()
    tmp.unlink()
    out, i = [], 12
    while i + 8 <= len(data):
        tag, size = data[i:i + 4], struct.unpack(">I", data[i + 4:i + 8])[0]
        out.append((tag, data[i + 8:i + 8 + size]))
        i += 8 + size + (size & 1)
    chunks = dict(out)

    def ch(tag, body):
        return tag + struct.pack(">I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    text = b"take 3, room mic"
    comt = struct.pack(">HIHH", 1, 0, 0, len(text)) + text
    body = b"AIFF" + ch(b"COMM", chunks[b"COMM"]) + ch(b"COMT", comt) + ch(b"NAME", b"odd loop") \
        + ch(b"SSND", chunks[b"SSND"])
    p = d / "comments.aiff"
    p.write_bytes(b"FORM" + struct.pack(">I", len(body)) + body)
    return p, x, sr


def corpus(d: Path) -> dict[str, tuple[Path, np.ndarray, int]]:
    """name -> (path, audio as written, rate). 'lossy' names are compared with a codec's tolerance."""
    d.mkdir(parents=True, exist_ok=True)
    out = {
        "mp3_cbr_44k_stereo": mp3(d, 44100, 2, "CONSTANT"),
        "mp3_vbr_48k_mono": mp3(d, 48000, 1, "VARIABLE"),
        "mp3_vbr_44k_stereo": mp3(d, 44100, 2, "VARIABLE"),
        "mp3_cbr_48k_stereo": mp3(d, 48000, 2, "CONSTANT"),
        "streaming_sizes_wav": streaming_wav(d),
        "cue_labels_wav": wav_cue_labels(d),
        "comments_aiff": aiff_comments(d),
    }
    sr = 96000
    x = groove(SECONDS, sr)
    out["wavex_float_96k"] = (_write(d / "extensible_float_96k.wav", x, sr, format="WAVEX", subtype="FLOAT"), x, sr)
    sr = 22050
    x = groove(SECONDS, sr, channels=1)
    out["pcm_u8"] = (_write(d / "eight_bit.wav", x, sr, subtype="PCM_U8"), x, sr)
    sr = 8000
    x = groove(SECONDS, sr, channels=1)
    out["mu_law"] = (_write(d / "mu_law.wav", x, sr, subtype="ULAW"), x, sr)
    sr = 48000
    x = groove(SECONDS, sr, channels=6)
    out["six_channels"] = (_write(d / "six_channels.wav", x, sr, subtype="PCM_16"), x, sr)
    x = groove(SECONDS, sr)
    out["opus_48k"] = (_write(d / "opus.opus", x, sr, format="OGG", subtype="OPUS"), x, sr)
    sr = 44100
    x = groove(SECONDS, sr)
    out["vorbis_44k"] = (_write(d / "vorbis.ogg", x, sr, format="OGG", subtype="VORBIS"), x, sr)
    out["flac_24"] = (_write(d / "flac24.flac", x, sr, format="FLAC", subtype="PCM_24"), x, sr)
    y = x.copy()
    y[:, 3 * sr:3 * sr + 50] = np.nan
    y[0, 9 * sr] = np.inf
    y[1, 9 * sr + 5] = -np.inf
    out["nan_inf"] = (_write(d / "nan_inf.wav", y, sr, subtype="FLOAT"), x, sr)
    out["silence"] = (_write(d / "silence.wav", np.zeros((2, int(SECONDS * sr)), np.float32), sr,
                             subtype="PCM_16"), np.zeros((2, int(SECONDS * sr)), np.float32), sr)
    x = groove(SECONDS, sr) * 3.6         # peaks at 1.8: float WAV keeps them
    out["over_full_scale"] = (_write(d / "hot.wav", x, sr, subtype="FLOAT"), x, sr)
    x = groove(SECONDS, sr)
    out["non_ascii_path"] = (_write(d / "ünïcødé 音 loop (1).wav", x, sr, subtype="PCM_16"), x, sr)
    return out


LOSSY = ("mp3", "opus", "vorbis", "mu_law", "pcm_u8")
