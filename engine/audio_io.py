"""Reading sources and writing results.

Sources are read with pedalboard (WAV, AIFF, FLAC, Ogg, MP3) and resampled to
the project rate with scipy's polyphase filter, which is ~30x faster than a
streaming resampler on a whole buffer and exact in length. Decoded sources are
kept in a small LRU cache keyed by file content, so repeated edits of one file
skip decoding. Results are written as 32-bit float WAV under a temporary name
and moved into place, never over an existing file.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from .errors import SegueError


@dataclass(frozen=True)
class Source:
    path: str
    audio: np.ndarray        # (channels, n) float32 at `sr`
    sr: int                  # rate of `audio` (the requested project rate)
    file_sr: int             # rate of the file
    key: str                 # content hash of the file (hex)

    @property
    def channels(self) -> int:
        return self.audio.shape[0]

    @property
    def frames(self) -> int:
        return self.audio.shape[1]

    @property
    def file_seconds(self) -> float:
        return self.frames / self.sr


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (channels, n) to exactly round(n * sr_out / sr_in) samples."""
    if sr_in == sr_out:
        return audio
    ratio = Fraction(sr_out, sr_in)
    y = resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
    want = int(round(audio.shape[-1] * sr_out / sr_in))
    if y.shape[-1] > want:
        y = y[..., :want]
    elif y.shape[-1] < want:
        y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, want - y.shape[-1])], mode="edge")
    return y


class SourceReader:
    """Decodes sources, with a content-keyed cache bounded in bytes."""

    def __init__(self, cache_bytes: int = 64 << 20):
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, int], Source] = OrderedDict()
        self._hashes: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def content_key(self, path: str) -> str:
        st = os.stat(path)
        stamp = (path, st.st_size, st.st_mtime_ns, st.st_ino)
        key = self._hashes.get(stamp)
        if key is None:
            h = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            key = h.hexdigest()
            if len(self._hashes) > 256:
                self._hashes.clear()
            self._hashes[stamp] = key
        return key

    def read(self, path: str, sr: int | None = None) -> Source:
        check_source_path(path)
        try:
            key = self.content_key(path)
        except OSError as e:
            raise SegueError("source_unreadable", f"cannot read {path}: {e.strerror}") from e
        with self._lock:
            for (k, r), src in self._cache.items():
                if k == key and (sr is None or r == sr):
                    self._cache.move_to_end((k, r))
                    return Source(path, src.audio, src.sr, src.file_sr, key)
        audio, file_sr = decode(path)
        out_sr = sr or file_sr
        audio = resample(audio, file_sr, out_sr)
        audio.setflags(write=False)  # shared through the cache: nobody may edit it in place
        src = Source(path, audio, out_sr, file_sr, key)
        with self._lock:
            self._cache[(key, out_sr)] = src
            while len(self._cache) > 1 and sum(s.audio.nbytes for s in self._cache.values()) > self.cache_bytes:
                self._cache.popitem(last=False)
        return src


def check_source_path(path: str) -> None:
    if not path or not os.path.isabs(path):
        raise SegueError("source_not_found", f"source {path!r} must be an absolute path")
    if not os.path.exists(path):
        raise SegueError("source_not_found", f"source {path} does not exist")
    if not os.path.isfile(path):
        raise SegueError("source_unreadable", f"source {path} is not a regular file")


def probe(path: str) -> tuple[float, int]:
    """(duration in seconds, sample rate) from the header only: cheap enough for the receive thread."""
    from pedalboard.io import AudioFile

    check_source_path(path)
    try:
        with AudioFile(path) as f:
            sr = float(f.samplerate)
            return f.frames / sr, int(round(sr))
    except Exception as e:
        raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e


def decode(path: str) -> tuple[np.ndarray, int]:
    from pedalboard.io import AudioFile

    try:
        with AudioFile(path) as f:
            sr = int(round(f.samplerate))
            audio = f.read(f.frames)
    except Exception as e:  # pedalboard raises ValueError/RuntimeError for non-audio files
        raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise SegueError("source_unreadable", f"{path} holds no audio frames")
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(audio, dtype=np.float32), sr


def safe_stem(text: str, limit: int = 40) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    return keep[:limit].strip("_") or "x"


def write_wav_atomic(folder: Path, name: str, audio: np.ndarray, sr: int) -> Path:
    """Write float32 WAV as folder/name without ever replacing an existing file."""
    from pedalboard.io import AudioFile

    final = folder / name
    tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.part.wav"
    try:
        with AudioFile(str(tmp), "w", samplerate=sr, num_channels=audio.shape[0], bit_depth=32) as f:
            f.write(np.ascontiguousarray(audio, dtype=np.float32))
        try:
            os.link(tmp, final)        # fails if `final` exists: no overwrite, ever
            os.unlink(tmp)
        except OSError:
            if final.exists():
                raise
            os.replace(tmp, final)     # filesystems without hard links (FAT, some SMB)
    except OSError as e:
        _silent_unlink(tmp)
        raise SegueError("write_failed", f"cannot write {final}: {e.strerror or e}") from e
    except Exception as e:
        _silent_unlink(tmp)
        raise SegueError("write_failed", f"cannot write {final}: {e}") from e
    return final


def _silent_unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or edge-pad (channels, m) to exactly n samples (guards a backend's off-by-one)."""
    m = audio.shape[-1]
    if m == n:
        return audio
    if m > n:
        return audio[..., :n]
    return np.pad(audio, ((0, 0), (0, n - m)), mode="edge" if m else "constant")


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    c = audio.shape[0]
    if c == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    return np.repeat(audio[:1], channels, axis=0) if c == 1 else audio[:channels]


__all__ = ["Source", "SourceReader", "resample", "decode", "write_wav_atomic", "fit_length",
           "match_channels", "safe_stem", "check_source_path", "probe"]
