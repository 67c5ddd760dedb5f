"""Encoded latent frames per source (file content and rate), reused by every later edit that overlaps.

    cache = LatentCache(encode, hop=2048, latent_dim=64, margin=8, model_sr=44100)
    src = cache.source(task.source_key, task.audio, task.sr)   # resampled once, kept per file
    z = cache.frames(src, wa, wb)                               # (latent_dim, wb - wa) float32
    z = cache.window(src, wa, keep)          # a canvas: kept frames (keep > 0) from the file, zeros elsewhere
    z = cache.window(src, wa, keep, open_edges=True)   # the same, no receptive field beyond the canvas

Each source keeps a latent array for the whole file and a per-frame "have"
flag: a request encodes only the frames it needs that no earlier request
encoded, each run of missing frames with `margin` frames of receptive field
on both sides (run starts aligned to `align` frames for encoders that work in
fixed chunks), so a slice equals a whole-file encode. A new region whose
window overlaps an earlier one encodes only the difference. `prefetch`
fills the rest of a file in small chunks while the engine is idle.
Storage is engine/cache.py's ByteCache (LRU bounded in bytes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ...audio_io import resample
from ...cache import ByteCache
from .window import merge_runs, runs

Encode = Callable[[torch.Tensor], torch.Tensor]   # (1, C, S) audio -> (1, latent_dim, S // hop)


@dataclass
class SourceLatents:
    audio: np.ndarray          # (channels, frames * hop) at the model rate, zero-padded
    n_real: int                # samples of real audio in `audio`
    latents: torch.Tensor      # (latent_dim, frames) float32
    have: torch.Tensor         # (frames,) bool: frame encoded
    edited: np.ndarray | None = None   # (frames,) bool: inside an edited region (prefetched last)
    # frames next to a canvas's open outer edge (LatentCache.window, open_edges): {("L", lo) or
    # ("R", hi): (first frame, (latent_dim, k) latents)}, so a re-roll of that canvas encodes nothing
    open_edges: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.latents.shape[-1])


def model_audio(audio: np.ndarray, sr: int, model_sr: int, channels: int = 2) -> np.ndarray:
    """(C, n) at `sr` -> (channels, round(n * model_sr / sr)) float32: mono duplicated, extra channels dropped."""
    a = np.asarray(audio, dtype=np.float32)
    if a.shape[0] < channels:
        a = np.repeat(a[:1], channels, axis=0)
    a = a[:channels]
    return resample(np.ascontiguousarray(a), sr, model_sr)


class LatentCache:
    def __init__(self, encode: Encode, hop: int, latent_dim: int, margin: int, model_sr: int,
                 channels: int = 2, align: int = 1, max_bytes: int = 512 << 20):
        self.encode, self.hop, self.latent_dim, self.margin = encode, hop, latent_dim, margin
        self.model_sr, self.channels, self.align = model_sr, channels, max(1, align)
        self.store = ByteCache(max_bytes)
        self.lock = threading.RLock()        # one encoder user at a time (request or prefetch)
        self.encoded_frames = 0              # frames encoded so far (tests and benchmarks read it)

    def new_source(self, audio: np.ndarray, sr: int) -> SourceLatents:
        a = model_audio(audio, sr, self.model_sr, self.channels)
        n_real = a.shape[-1]
        frames = max(-(-n_real // self.hop), 1)
        a = np.pad(a, ((0, 0), (0, frames * self.hop - n_real)))
        return SourceLatents(a, n_real, torch.zeros(self.latent_dim, frames), torch.zeros(frames, dtype=torch.bool),
                             np.zeros(frames, dtype=bool))

    def mark_edited(self, src: SourceLatents, fa: int, fb: int) -> None:
        """Frames [fa, fb) were a region an edit regenerated: a later edit needs them only as context of
        another region, so the prefetch encodes them after everything else."""
        if src.edited is not None:
            src.edited[max(fa, 0):max(min(fb, src.frames), 0)] = True

    def source(self, key: str | None, audio: np.ndarray | None, sr: int) -> SourceLatents | None:
        """The cached source for (key, sr, length), made on first use; None when there is no audio.
        key None: not cached (made fresh)."""
        if audio is None or audio.shape[-1] == 0:
            return None
        if key is None:
            return self.new_source(audio, sr)
        return self.store.get_or_make((key, sr, int(audio.shape[-1])), lambda: self.new_source(audio, sr))

    def frames(self, src: SourceLatents, fa: int, fb: int, check: Callable[[], None] | None = None) -> torch.Tensor:
        """Latent frames [fa, fb) of the source (clipped to the file), encoding only the missing ones
        -> (latent_dim, frames) float32: `window` with every frame kept."""
        fa, fb = max(fa, 0), min(fb, src.frames)
        return self.window(src, fa, np.ones(max(fb - fa, 0), np.float32), check)

    @torch.inference_mode()
    def window(self, src: SourceLatents, wa: int, keep: np.ndarray,
               check: Callable[[], None] | None = None, open_edges: bool = False) -> torch.Tensor:
        """Latents of a canvas of latent frames [wa, wa + len(keep)): the kept frames (keep (n,) > 0)
        from the source, zeros elsewhere -> (latent_dim, n) float32. Missing kept frames are encoded
        in as few encoder frames as possible: runs closer than two margins are encoded as one.

        open_edges: a missing run that reaches the canvas's outer edge is encoded without receptive
        field beyond that edge, as the official pipelines encode their whole window in one pass (the
        encoder's padding stands in for the audio outside). The frames within a margin of such an
        edge serve this canvas only; they are not cached, so a later canvas that holds them inside
        encodes them exactly. Saves a margin of encoder work at each outer edge of a new region."""
        n = len(keep)
        out = torch.zeros(self.latent_dim, n)
        spans = [(max(wa + a, 0), min(wa + b, src.frames)) for a, b in runs(np.asarray(keep) > 0)]
        spans = [(a, b) for a, b in spans if a < b]
        lo, hi = max(wa, 0), min(wa + n, src.frames)
        with self.lock:
            edges = {k: src.open_edges[k] for k in (("L", lo), ("R", hi)) if open_edges and k in src.open_edges}
            usable = src.have.clone()
            for f0, z in edges.values():
                usable[f0:f0 + z.shape[1]] = True
            missing = [(a + r0, a + r1) for a, b in spans for r0, r1 in runs(~usable[a:b].numpy())]
            for r0, r1 in merge_runs(missing, 2 * self.margin):
                if check is not None:
                    check()
                left, right = open_edges and r0 == lo, open_edges and r1 == hi
                e0, e1 = self._encode_run(src, r0, r1, open_left=left, open_right=right)
                if left and e0 > r0:
                    edges[("L", lo)] = src.open_edges[("L", lo)] = (r0, src.latents[:, r0:e0].clone())
                if right and e1 < r1:
                    edges[("R", hi)] = src.open_edges[("R", hi)] = (e1, src.latents[:, e1:r1].clone())
            for a, b in spans:
                out[:, a - wa:b - wa] = src.latents[:, a:b]
            for f0, z in edges.values():            # where no exact frame exists (yet)
                for i in range(z.shape[1]):
                    f = f0 + i
                    if lo <= f < hi and not src.have[f] and keep[f - wa] > 0:
                        out[:, f - wa] = z[:, i]
            while len(src.open_edges) > 64:         # a few KB each; keep the latest canvases'
                src.open_edges.pop(next(iter(src.open_edges)))
        return out

    def _encode_run(self, src: SourceLatents, r0: int, r1: int, open_left: bool = False,
                    open_right: bool = False) -> tuple[int, int]:
        """Encode frames [r0, r1) with `margin` frames of audio each side (none on an open side) and
        mark as cached the frames that equal a whole-file encode: every frame with a full margin of
        real audio on both sides, or the file's own edge. -> (e0, e1), those frames."""
        m, total = self.margin, src.frames
        s0 = (r0 if open_left else max(r0 - m, 0)) // self.align * self.align
        s1 = r1 if open_right else min(r1 + m, total)
        audio = torch.from_numpy(src.audio[None, :, s0 * self.hop: s1 * self.hop])
        z = self.encode(audio)[0].float().cpu()
        src.latents[:, r0:r1] = z[:, r0 - s0: r1 - s0]
        e0 = r0 if s0 == 0 or r0 - s0 >= m else min(s0 + m, r1)
        e1 = r1 if s1 == total or s1 - r1 >= m else max(s1 - m, e0)
        src.have[e0:e1] = True
        self.encoded_frames += r1 - r0
        return e0, e1

    @torch.inference_mode()
    def prefetch(self, src: SourceLatents, chunk: int = 32, should_stop: Callable[[], bool] = lambda: False,
                 order_from: int = 0) -> int:
        """Encode the frames still missing, `chunk` at a time, until done or should_stop(). Returns frames
        encoded. Meant for an idle thread: a request waits at most one chunk.

        Order (`prefetch_order`): first the gaps between frames already encoded (between earlier edits'
        windows: where a DAW user fixing hits across a loop edits next), nearest an encoded frame first;
        then outward from the encoded islands, nearest `order_from` (the last edit) first; frames of
        edited regions (`mark_edited`) last; a file with nothing encoded yet starts centred on `order_from`."""
        done = 0
        while not should_stop():
            pick = prefetch_order(src.have.numpy(), order_from, src.edited)
            if pick is None:
                break
            f, grow_right = pick
            if not src.have.any():
                r0 = max(f - chunk // 2, 0)
            else:
                r0 = f if grow_right else max(f - chunk + 1, 0)
            with self.lock:
                if should_stop():
                    break
                for a, b in runs(~src.have[r0:r0 + chunk].numpy()):
                    self._encode_run(src, a + r0, b + r0)
                    done += b - a
        return done


def prefetch_order(have: np.ndarray, order_from: int, later: np.ndarray | None = None) -> tuple[int, bool] | None:
    """The next missing frame to prefetch and the direction to grow from it: -> (frame, grow_right) or
    None when every frame is encoded. have (frames,) bool.

    Key, smallest first: (marked in `later` (frames,) bool, not inside a gap between encoded frames,
    distance to the nearest encoded frame, distance to `order_from`). grow_right: the encoded neighbour is on the left (or, with
    nothing encoded, the frame is at or right of order_from)."""
    missing = np.flatnonzero(~have)
    if missing.size == 0:
        return None
    enc = np.flatnonzero(have)
    if enc.size == 0:
        f = int(missing[np.argmin(np.abs(missing - order_from))])
        return f, f >= order_from
    i = np.searchsorted(enc, missing)                          # enc[i - 1] < m < enc[i]
    left = np.where(i > 0, missing - enc[np.maximum(i - 1, 0)], np.iinfo(np.int64).max)
    right = np.where(i < enc.size, enc[np.minimum(i, enc.size - 1)] - missing, np.iinfo(np.int64).max)
    in_gap = (i > 0) & (i < enc.size)
    near = np.minimum(left, right)
    last = np.zeros(missing.size, bool) if later is None else later[missing]
    k = np.lexsort((np.abs(missing - order_from), near, ~in_gap, last))[0]
    return int(missing[k]), bool(left[k] <= right[k])
