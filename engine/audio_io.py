"""Reading sources and writing results.

Sources are decoded with libsndfile (the `soundfile` package): WAV/RF64/W64,
AIFF, FLAC, Ogg Vorbis and Opus, and MP3 decoded gaplessly (the encoder's
start delay and end padding named in the LAME/Xing/Info tag are dropped), so
sample 0 is the sample a DAW plays at the item start. libsndfile also bounds
every header size by the bytes present (a WAV streamed to a pipe carries
RIFF/data sizes of 0xFFFFFFFF). Formats libsndfile cannot open fall back to
pedalboard, read in blocks until the file runs out, never trusting the
header's frame count for an allocation.

Decoding goes block by block into one preallocated (channels, frames) buffer,
calling `check()` between blocks, so a cancel or timeout stops a long read and
the peak memory is the audio once. MP3 is the exception: it is decoded in one
call (see `_read_size`), as libsndfile's MPEG decoder is only right without
read boundaries. A header's frame count bounds how far a decode reads, and the
file's size bounds what is allocated from it up front; mostly silent FLAC,
Vorbis or Opus pack more frames into a byte than that bound and are read on. Resampling to the project rate uses
scipy's polyphase filter, exact in length (round half up, as the protocol).

Decoded audio is kept in a ByteCache keyed by (file content, rate): the target
rate is resolved first (no `sr` = the file's own rate), so what an earlier
request asked for never changes the rate of a later one. Results are written
as 32-bit float WAV under a temporary name and moved into place, never over
an existing file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from .cache import ByteCache
from .errors import SegueError
from .timeline import round_half_up

log = logging.getLogger("segue.audio")
Check = Callable[[], None]
BLOCK_FRAMES = 1 << 16          # decode this many frames between two check() calls
HASH_CHUNK = 1 << 20            # bytes hashed between two check() calls
# Frames a byte of file is allowed to become in an allocation made from a header's claim (Opus at
# 6 kb/s is ~64 frames a byte at 48 kHz). Only an allocation bound: digital silence packs far more
# (a silent FLAC ~300, Vorbis ~340 frames a byte), so a decode that fills it reads on as the decoder
# gives audio, up to the header's own count.
MAX_FRAMES_PER_BYTE = 128
# A FLAC header (STREAMINFO) is trusted for an exactly seekable length up to this: a constant-valued
# block of at most 65535 frames takes at least ~16 bytes.
FLAC_MAX_FRAMES_PER_BYTE = 4096


def _no_check() -> None:
    pass


@dataclass(frozen=True)
class Source:
    path: str
    audio: np.ndarray        # (channels, n) float32 at `sr`
    sr: int                  # rate of `audio` (the requested project rate, or the file's own)
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

    def window(self, lo: int, hi: int, check: Check | None = None) -> np.ndarray:
        """Samples [lo, hi) of `audio` (clamped to the audio): (channels, hi - lo) float32, read-only."""
        lo, hi = min(max(int(lo), 0), self.frames), min(int(hi), self.frames)
        return self.audio[:, lo:max(hi, lo)]


# libsndfile formats whose frame count comes from the bytes present and whose seek is sample-exact:
# a window of them is read without decoding the rest. Others (MP3, Ogg, Opus...) are decoded whole
# when short, else counted once and decoded from the start up to each window, keeping only the window.
EXACT_SEEK_FORMATS = frozenset({"WAV", "WAVEX", "AIFF", "W64", "RF64", "CAF", "FLAC"})


@dataclass
class SourceFile:
    """An opened source at rate `sr`, read lazily: `window(lo, hi)` decodes (and resamples) only those
    samples, so a request holds the context its backend needs, not the whole file (issue 8, fault 5).

    `frames` is the length at `sr` (exact: from the header for EXACT_SEEK_FORMATS, else from decoding).
    A window equals the same samples of `SourceReader.read(path, sr).audio`.
    """
    path: str
    sr: int                  # rate of every window (the requested project rate, or the file's own)
    file_sr: int
    key: str                 # content hash of the file (hex)
    channels: int
    frames: int              # samples at `sr`
    reader: "SourceReader"
    whole: np.ndarray | None = None     # the decoded audio at `sr` (short files of formats that cannot seek exactly)
    file_frames: int = 0     # samples at `file_sr`
    seekable: bool = True    # False: windows are decoded from the file's start (MP3, Ogg, Opus...)

    @property
    def file_seconds(self) -> float:
        return self.frames / self.sr

    def window(self, lo: int, hi: int, check: Check | None = None) -> np.ndarray:
        """Samples [lo, hi) at `sr`, clamped to [0, frames): (channels, m) float32, read-only.
        Raises SegueError source_unreadable."""
        lo, hi = min(max(int(lo), 0), self.frames), min(int(hi), self.frames)
        hi = max(hi, lo)
        if self.whole is not None:
            return self.whole[:, lo:hi]
        if lo == 0 and hi == self.frames:   # the whole file: the cached whole read, as before windows
            return self.reader.read(self.path, self.sr, check).audio
        return self.reader.read_window(self, lo, hi, check)


def resampled_length(n: int, sr_in: int, sr_out: int) -> int:
    """Samples of n samples at sr_in once resampled to sr_out: round half up of n * sr_out / sr_in
    (the protocol's rounding), in exact integer arithmetic."""
    return (2 * n * sr_out + sr_in) // (2 * sr_in)


def resample(audio: np.ndarray, sr_in: int, sr_out: int, check: Check | None = None) -> np.ndarray:
    """Resample (channels, n) float32 from sr_in to sr_out Hz: exactly resampled_length(n) samples.

    scipy's polyphase filter, run over blocks of the input (each block with a margin wider than
    the filter on both sides, starting on a multiple of the decimation factor so every block
    keeps the whole-buffer phase): the result equals one whole-buffer call, memory stays at
    the output plus one block, and `check()` runs between blocks.
    """
    if sr_in == sr_out:
        return audio
    from scipy.signal import resample_poly   # ~40 MB of modules: loaded only when a rate conversion is asked

    check = check or _no_check
    ratio = Fraction(int(sr_out), int(sr_in))
    up, down = ratio.numerator, ratio.denominator
    C, n = audio.shape[0], audio.shape[-1]
    want = resampled_length(n, sr_in, sr_out)
    out = np.empty((C, want), dtype=np.float32)
    step = down * max(1, (1 << 18) // down)
    pad = down * max(1, -(-1024 // down))       # filter half-length is ~10 input samples per side
    done = 0
    for i0 in range(0, n, step):
        check()
        i1 = min(i0 + step, n)
        lo, hi = max(i0 - pad, 0), min(i1 + pad, n)
        y = resample_poly(audio[:, lo:hi], up, down, axis=-1)
        skip = (i0 - lo) * up // down
        o0 = i0 * up // down
        o1 = want if i1 == n else i1 * up // down
        got = y[:, skip:skip + (o1 - o0)]
        out[:, o0:o0 + got.shape[1]] = got
        done = o0 + got.shape[1]
    if done < want:      # at most a sample short at the very end (round half up of the length)
        out[:, done:] = out[:, done - 1:done] if done else 0.0
    return out


class SourceReader:
    """Decodes sources. Decoded audio is cached by (content hash, rate) in a ByteCache, so byte-identical
    copies share it and the rate a request gets never depends on what was asked before."""

    def __init__(self, cache_bytes: int = 96 << 20, whole_decode_bytes: int = 64 << 20):
        self.audio = ByteCache(cache_bytes)
        self.whole_decode_bytes = whole_decode_bytes   # sequential formats above this (as float32): windowed
        # (path, size, mtime, inode, device) -> (content hash, file rate): a file is hashed once per version.
        self.stamps = ByteCache(1 << 20, sizeof=lambda v: 256)

    def content_key(self, path: str, check: Check | None = None) -> tuple[str, int]:
        """(blake2b content hash hex, the file's own sample rate in Hz). Raises SegueError."""
        check = check or _no_check
        try:
            st = os.stat(path)
        except OSError as e:
            raise SegueError("source_unreadable", f"cannot read {path}: {e.strerror}") from e
        stamp = (path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
        got = self.stamps.get(stamp)
        if got is None:
            _, file_sr = probe(path)
            h = hashlib.blake2b(digest_size=16)
            try:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
                        check()
                        h.update(chunk)
            except OSError as e:
                raise SegueError("source_unreadable", f"cannot read {path}: {e.strerror}") from e
            got = (h.hexdigest(), file_sr)
            self.stamps.put(stamp, got)
        return got

    def read(self, path: str, sr: int | None = None, check: Check | None = None) -> Source:
        """The source at `sr` Hz (None: the file's own rate) as (channels, n) float32.

        `check()` is called between blocks of hashing, decoding and resampling (it raises to stop).
        Raises SegueError source_not_found / source_unreadable.
        """
        check = check or _no_check
        check_source_path(path)
        key, file_sr = self.content_key(path, check)
        out_sr = int(sr) if sr else file_sr          # the target rate is resolved before any lookup
        hit = self.audio.get((key, out_sr))
        if hit is not None:
            return Source(path, hit, out_sr, file_sr, key)
        native = self.audio.get((key, file_sr))
        if native is None:
            native, dec_sr = decode(path, check)
            if dec_sr != file_sr:                    # the header changed under us: trust the decoder
                file_sr = dec_sr
                out_sr = int(sr) if sr else file_sr
            native.setflags(write=False)             # shared through the cache: nobody may edit it in place
            self.audio.put((key, file_sr), native)
        audio = resample(native, file_sr, out_sr, check)
        if audio is not native:
            audio.setflags(write=False)
            self.audio.put((key, out_sr), audio)
        return Source(path, audio, out_sr, file_sr, key)

    def open(self, path: str, sr: int | None = None, check: Check | None = None) -> SourceFile:
        """The source at `sr` Hz (None: the file's own rate), opened for windowed reads.

        WAV/AIFF/FLAC/W64/RF64/CAF: the header only (frames bounded by the bytes present). Other formats
        are decoded whole here when their audio is under `whole_decode_bytes` as float32; above it, one
        decoding pass counts the frames (the exact length, whatever the header says) and windows are
        decoded sequentially. Raises like `read`.
        """
        check = check or _no_check
        check_source_path(path)
        key, file_sr = self.content_key(path, check)
        out_sr = int(sr) if sr else file_sr
        cached = self.audio.get((key, out_sr))
        info = _exact_seek_info(path)
        if cached is None and info is not None and info[1] == file_sr:
            n_in, _, C = info
            return SourceFile(path, out_sr, file_sr, key, C, resampled_length(n_in, file_sr, out_sr), self,
                              file_frames=n_in)
        seq = _sequential_info(path) if cached is None else None
        if seq is not None and seq[1] == file_sr and seq[0] * seq[2] * 4 > self.whole_decode_bytes:
            n_in = self._counted(key, path, check)
            return SourceFile(path, out_sr, file_sr, key, seq[2], resampled_length(n_in, file_sr, out_sr), self,
                              file_frames=n_in, seekable=False)
        src = self.read(path, sr, check)
        return SourceFile(path, src.sr, src.file_sr, key, src.channels, src.frames, self, whole=src.audio,
                          file_frames=src.frames)

    def read_window(self, f: SourceFile, lo: int, hi: int, check: Check | None = None) -> np.ndarray:
        """Samples [lo, hi) at f.sr of an exactly seekable file, decoding only the input samples they
        depend on (plus a filter margin when resampling, starting on a multiple of the decimation factor
        so the polyphase phase is the whole file's). Not cached: a window is re-read per request (a seek
        and its own samples), so the engine holds no audio between requests for long sources."""
        check = check or _no_check
        if f.sr == f.file_sr:
            out = _read_range(f.path, lo, hi, f.file_frames, check, f.seekable)
        else:
            ratio = Fraction(int(f.sr), int(f.file_sr))
            up, down = ratio.numerator, ratio.denominator
            pad = down * max(1, -(-1024 // down))
            i0 = max((lo * down // up) // down * down - pad, 0)
            i1 = min(-(-hi * down // up) + pad, f.file_frames)
            seg = _read_range(f.path, i0, i1, f.file_frames, check, f.seekable)
            out = None
            if seg is not None:
                y = resample(seg, f.file_sr, f.sr, check)
                o0 = i0 * up // down
                out = np.ascontiguousarray(y[:, lo - o0:hi - o0])
        if out is None:
            # the file holds fewer frames than its header said (damaged): the whole decode is honest
            return self.read(f.path, f.sr, check).audio[:, lo:hi]
        out.setflags(write=False)
        return out


    def _counted(self, key: str, path: str, check: Check) -> int:
        """Frames a sequential file decodes to (one pass, nothing kept), cached by content."""
        got = self.stamps.get(("frames", key))
        if got is None:
            got = _count_frames(path, check)
            self.stamps.put(("frames", key), got)
        return got


def _sequential_info(path: str) -> tuple[int, int, int] | None:
    """(frames the header claims, bounded by the bytes present; rate; channels) of a file libsndfile
    decodes but does not seek exactly in; None for formats it cannot open."""
    try:
        import soundfile as sf
        with sf.SoundFile(path) as f:
            limit = _file_bytes(path) * MAX_FRAMES_PER_BYTE // max(f.channels, 1)
            frames = int(f.frames) if f.frames > 0 else limit    # a size estimate, never an allocation
            return frames, int(f.samplerate), int(f.channels)
    except Exception:
        return None


def _count_frames(path: str, check: Check) -> int:
    import soundfile as sf
    total = 0
    try:
        with sf.SoundFile(path) as f:
            # more than both the header's count and the byte bound: a decoder running away on damage
            limit = max(int(f.frames), _file_bytes(path) * MAX_FRAMES_PER_BYTE // max(f.channels, 1)) + BLOCK_FRAMES
            while True:
                check()
                got = len(f.read(BLOCK_FRAMES, dtype="float32", always_2d=True))
                if got == 0:
                    break
                total += got
                if total > limit:
                    raise SegueError("source_unreadable", f"{path}: decoding gives more audio than "
                                     f"{_file_bytes(path)} bytes can hold; the file looks damaged")
    except SegueError:
        raise
    except Exception as e:
        raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e
    if total == 0:
        raise SegueError("source_unreadable", f"{path} holds no audio frames")
    return total


def _exact_seek_info(path: str) -> tuple[int, int, int] | None:
    """(frames, rate, channels) from the header of a file libsndfile seeks exactly in, else None."""
    try:
        import soundfile as sf
        with sf.SoundFile(path) as f:
            per_byte = FLAC_MAX_FRAMES_PER_BYTE if f.format == "FLAC" else MAX_FRAMES_PER_BYTE
            limit = _file_bytes(path) * per_byte // max(f.channels, 1)
            if f.format in EXACT_SEEK_FORMATS and f.seekable() and 0 < f.frames <= limit:
                return int(f.frames), int(f.samplerate), int(f.channels)
    except Exception:
        pass
    return None


def _read_range(path: str, i0: int, i1: int, frames: int, check: Check, seek: bool = True) -> np.ndarray | None:
    """Frames [i0, i1) of a file as (channels, i1 - i0) float32 (NaN -> 0, inf -> +-1): seeking to i0,
    or (seek=False) decoding from the start and dropping the blocks before i0. None when the file
    holds fewer frames than that."""
    import soundfile as sf
    try:
        with sf.SoundFile(path) as f:
            out = np.empty((f.channels, max(i1 - i0, 0)), dtype=np.float32)
            at = 0                                   # file frame of the next block
            if seek:
                f.seek(i0)
                at = i0
            if _fill_blocks(f, out, at, i0, check) < out.shape[1]:
                return None
    except SegueError:
        raise
    except Exception as e:
        raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e
    return out


MP3_SETTLE_FRAMES = 1 << 14      # decoded and dropped before an MP3 window after a read boundary


def _read_size(f, at: int, i0: int, i1: int) -> int:
    """Frames for the next read call of the open soundfile `f`, whose next frame is `at`, filling
    frames [i0, i1) (frames before i0 are decoded and dropped).

    MP3 reads end only where what follows is dropped: libsndfile 1.2's MPEG decoder loses the bit
    reservoir when a read call ends in the frames that carry it for the next ones (after digital
    silence, 1485 samples of a drum hit decoded as near-silence when a 65536-frame read ended 4,500
    samples before it; one read, pedalboard and ffmpeg agree). The damage stays within a frame or
    two of the boundary, so frames before a window are read in blocks up to MP3_SETTLE_FRAMES ahead
    of it and the window in one call (memory: the window, not the file before it). The decoder runs
    at ~1000x real time, so that call still answers a cancel within a second or two."""
    if f.format != "MP3":
        return min(BLOCK_FRAMES, i1 - at)
    settle = i0 - MP3_SETTLE_FRAMES
    return min(BLOCK_FRAMES, settle - at) if at < settle else i1 - at


def _fill_blocks(f, out: np.ndarray, at: int, i0: int, check: Check) -> int:
    """Read frames [i0, i0 + n) of the open soundfile `f`, whose next frame is `at` (<= i0), into
    `out` (channels, n) float32, block by block (frames before i0 are read and dropped: formats that
    cannot seek exactly); NaN -> 0, inf -> +-1. Returns the frames filled (fewer: the file ended)."""
    i1, pos = i0 + out.shape[1], 0
    while pos < out.shape[1]:
        check()
        try:
            blk = f.read(_read_size(f, at, i0, i1), dtype="float32", always_2d=True)
        except Exception as e:
            if at == 0:
                raise                 # nothing decodes: not readable audio
            # a file cut short or damaged further on (an interrupted copy): the audio before the
            # damage is read, as a DAW plays it; the caller sees fewer frames than it asked for
            log.warning("decoding stops at frame %d: %s", at, e)
            break
        if len(blk) == 0:
            break
        skip = max(i0 - at, 0)
        at += len(blk)
        if skip >= len(blk):
            continue
        blk = blk[skip:]
        if not np.isfinite(blk).all():
            blk = np.nan_to_num(blk, nan=0.0, posinf=1.0, neginf=-1.0)
        out[:, pos:pos + len(blk)] = blk.T
        pos += len(blk)
    return pos


def check_source_path(path: str) -> None:
    if not path or not os.path.isabs(path):
        raise SegueError("source_not_found", f"source {path!r} must be an absolute path")
    try:
        st = os.stat(path)
    except PermissionError:    # a folder on the way the engine may not enter: not the same as missing
        raise SegueError("source_unreadable", f"source {path}: permission denied (a folder on its path "
                         "cannot be entered by the user the engine runs as)") from None
    except OSError:
        raise SegueError("source_not_found", f"source {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise SegueError("source_unreadable", f"source {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise SegueError("source_unreadable", f"source {path}: permission denied (the engine's user cannot "
                         "read it)")


def _file_bytes(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _refuse_untagged_vbr(path: str, decodable: float) -> None:
    """An MP3 without a Xing/Info/VBRI tag whose bitrate varies decodes only as far as libsndfile's
    estimate from its first frame's bitrate: refuse it, naming both lengths, rather than serve part of it.
    Raises SegueError source_unreadable."""
    import mmap

    from .mp3_frames import untagged_stream_seconds
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            held = untagged_stream_seconds(data)
    except (OSError, ValueError):
        return
    if held is not None and held > decodable * 1.01 + 0.25:   # short by more than delay, padding and rounding
        raise SegueError("source_unreadable", f"{path} is an MP3 without a Xing/Info header: its frames hold "
                         f"{held:.1f} s, but the decoder reads only the first {decodable:.1f} s (it guesses the length "
                         "from the first frame's bitrate). Export it again (LAME, ffmpeg and DAWs write the header) "
                         "or as WAV/FLAC")


def probe(path: str) -> tuple[float, int]:
    """(duration in seconds, sample rate in Hz) from the header, bounded by the bytes present.

    Cheap: no decoding (libsndfile reads the header; for MP3 it reads the Xing/LAME tag, so the
    duration is the gapless one). Raises SegueError source_not_found / source_unreadable.
    """
    check_source_path(path)
    try:
        import soundfile as sf
        info = sf.info(path)
        if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
            raise SegueError("source_unreadable", f"{path} holds no audio frames")
        if info.format == "MP3":
            _refuse_untagged_vbr(path, info.frames / info.samplerate)
        return info.frames / info.samplerate, int(info.samplerate)
    except SegueError:
        raise
    except Exception:
        pass                                          # not a format libsndfile knows: pedalboard
    from pedalboard.io import AudioFile
    try:
        with AudioFile(path) as f:
            sr = float(f.samplerate)
            frames = min(int(f.frames), _file_bytes(path) * MAX_FRAMES_PER_BYTE)
    except Exception as e:
        raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e
    if frames <= 0 or sr <= 0:
        raise SegueError("source_unreadable", f"{path} holds no audio frames")
    return frames / sr, int(round(sr))


def decode(path: str, check: Check | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file to ((channels, n) float32, rate in Hz), gaplessly for MP3/Opus.

    NaN samples become 0 and infinities +-1 (a DAW would play them as clipped full scale).
    Raises SegueError source_unreadable (not audio, no frames, a header claiming more than the file).
    """
    check = check or _no_check
    try:
        import soundfile as sf
        f = sf.SoundFile(path)
    except Exception:
        return _decode_pedalboard(path, check)
    with f:
        sr, C = int(f.samplerate), int(f.channels)
        claimed = int(f.frames) if f.frames > 0 else 0
        bound = max(_file_bytes(path) * MAX_FRAMES_PER_BYTE // max(C, 1), BLOCK_FRAMES)
        frames = min(claimed, bound) if claimed else bound    # allocated up front: never beyond the bytes
        out = np.empty((C, frames), dtype=np.float32)
        try:
            pos = _fill_blocks(f, out, 0, 0, check)
            if pos == frames and claimed > frames:   # packed denser than the bound (silence): read on,
                more = []                             # block by block, as far as the decoder gives audio
                while pos < claimed:
                    blk = np.empty((C, min(BLOCK_FRAMES, claimed - pos)), dtype=np.float32)
                    got = _fill_blocks(f, blk, pos, pos, check)
                    if got == 0:
                        break
                    more.append(blk[:, :got])
                    pos += got
                if more:
                    out = np.concatenate([out] + more, axis=1)
                    frames = pos
        except SegueError:
            raise
        except Exception as e:
            raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e
    return _finish(path, out, pos, frames), sr


def _decode_pedalboard(path: str, check: Check) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot open: pedalboard, read block by block until the file runs out, so a
    header's frame count is never an allocation."""
    from pedalboard.io import AudioFile

    limit = _file_bytes(path) * MAX_FRAMES_PER_BYTE
    blocks, total = [], 0
    try:
        with AudioFile(path) as f:
            sr = int(round(f.samplerate))
            while True:
                check()
                blk = f.read(BLOCK_FRAMES)
                if blk.shape[-1] == 0:
                    break
                blk = np.asarray(blk, dtype=np.float32)
                if not np.isfinite(blk).all():
                    blk = np.nan_to_num(blk, nan=0.0, posinf=1.0, neginf=-1.0)
                blocks.append(blk)
                total += blk.shape[-1]
                if total > limit:
                    raise SegueError("source_unreadable", f"{path}: decoding gives more audio than "
                                     f"{_file_bytes(path)} bytes can hold; the file looks damaged")
    except SegueError:
        raise
    except Exception as e:  # pedalboard raises ValueError/RuntimeError for non-audio files
        raise SegueError("source_unreadable", f"{path} is not readable audio ({e})") from e
    out = np.concatenate(blocks, axis=1) if blocks else np.zeros((1, 0), np.float32)
    return _finish(path, out, total, total), sr


def _finish(path: str, out: np.ndarray, got: int, allocated: int) -> np.ndarray:
    if got == 0:
        raise SegueError("source_unreadable", f"{path} holds no audio frames")
    if got < allocated:
        out = np.ascontiguousarray(out[:, :got]) if got < allocated // 2 else out[:, :got]
    return out


def safe_stem(text: str, limit: int = 40) -> str:
    """`text` as a file-name part: letters, digits, - and _ (others become _), at most `limit` bytes
    of UTF-8 (file names are limited in bytes: 45 four-byte characters overflowed 255)."""
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    keep = keep.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return keep.strip("_") or "x"


WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _mask_offset(f) -> int | None:
    """File offset of the channel mask (dwChannelMask) in an open RIFF/RF64 WAVE file whose fmt chunk
    is WAVE_FORMAT_EXTENSIBLE; None for any other file or fmt chunk."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    pos = 12
    for _ in range(64):                      # chunks before fmt: JUNK, ds64, bext...; never many
        f.seek(pos)
        hdr = f.read(10)
        if len(hdr) < 8:
            return None
        size = int.from_bytes(hdr[4:8], "little")
        if hdr[:4] == b"fmt ":
            extensible = size >= 24 and int.from_bytes(hdr[8:10], "little") == WAVE_FORMAT_EXTENSIBLE
            return pos + 8 + 20 if extensible else None
        pos += 8 + size + (size & 1)
    return None


def channel_mask(path: str) -> int | None:
    """The WAVE_FORMAT_EXTENSIBLE speaker mask of a WAV source (0: channels not assigned to speakers),
    None for any other file or format. Never raises."""
    try:
        with open(path, "rb") as f:
            at = _mask_offset(f)
            if at is None:
                return None
            f.seek(at)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return None


def _set_channel_mask(path: Path, mask: int) -> None:
    """Write `mask` into the WAVE_FORMAT_EXTENSIBLE fmt chunk of a WAV just written (the writer puts
    its default layout there: 0x3F for any 6 channels). A plain fmt chunk (1-2 channels) is left."""
    with open(path, "r+b") as f:
        at = _mask_offset(f)
        if at is not None:
            f.seek(at)
            f.write(int(mask).to_bytes(4, "little"))


def write_wav_atomic(folder: Path, name: str, audio: np.ndarray, sr: int, channel_mask: int | None = None) -> Path:
    """Write float32 WAV as folder/name without ever replacing an existing file. `channel_mask`: the
    source's speaker mask, kept in the output (None: the writer's default layout).
    Raises SegueError write_failed."""
    from pedalboard.io import AudioFile

    final = folder / name
    tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.part.wav"
    try:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        with AudioFile(str(tmp), "w", samplerate=sr, num_channels=audio.shape[0], bit_depth=32) as f:
            if audio.shape[0] == audio.shape[1] > 1:   # square: pedalboard cannot tell channels from samples
                f.write(audio[:, :1])
                f.write(audio[:, 1:])
            else:
                f.write(audio)
        if channel_mask is not None:
            _set_channel_mask(tmp, channel_mask)
        try:
            os.link(tmp, final)        # fails if `final` exists: no overwrite, ever
            os.unlink(tmp)
        except OSError:
            if final.exists():
                raise
            os.replace(tmp, final)     # filesystems without hard links (FAT, some SMB)
    except OSError as e:
        silent_unlink(tmp)
        raise SegueError("write_failed", f"cannot write {final}: {e.strerror or e}") from e
    except Exception as e:
        silent_unlink(tmp)
        why = str(e).replace(str(tmp), str(folder))     # the hidden temporary's name means nothing to a user
        raise SegueError("write_failed", f"cannot write {final}: {why}") from e
    return final


def silent_unlink(p: Path) -> None:
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
    """(c, n) -> (channels, n). Down to mono: the mean; down to k > 1: the first k channels;
    up: the channels repeated in turn (mono to all; stereo to 6 as L R L R L R), so every
    output channel carries the generated audio at its own level."""
    c = audio.shape[0]
    if c == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if channels < c:
        return audio[:channels]
    return audio[np.arange(channels) % c]


__all__ = ["Source", "SourceFile", "SourceReader", "resample", "resampled_length", "decode", "write_wav_atomic", "fit_length",
           "match_channels", "safe_stem", "check_source_path", "probe"]
