"""Source windowing as pure functions: which latent frames an edit encodes, generates and decodes.

Units: samples are at the model's rate unless named otherwise; a latent frame
covers `hop` samples (2048 for Stable Audio Open, 4096 for Stable Audio 3).
A window [wa, wb) is a range of latent frames; frames are "known" when the
source covers them (continuations: only frames before `at`).

    fa, fb = snap(a, b, hop)                               # frames touching samples [a, b)
    wa, wb = context_window(fa, fb, known, cap, ctx)       # ctx frames each side, capped
    wa, wb = align_window(wa, wb, 2, lo=0, hi=cap_end)     # even frame count (SA3)
    keep = keep_mask(wa, wb, [(fa, fb)], known)            # 1 keep, 0 generate
"""

from __future__ import annotations

import math

import numpy as np


def to_model_samples(sample: float, sr: int, model_sr: int) -> float:
    """A sample position at rate `sr` as a (fractional) position at `model_sr`."""
    return sample * model_sr / sr


def snap(a: float, b: float, hop: int) -> tuple[int, int]:
    """Latent frames [fa, fb) that touch samples [a, b): floor(a / hop), ceil(b / hop) (at least one frame)."""
    fa = int(math.floor(a / hop))
    fb = max(int(math.ceil(b / hop)), fa + 1)
    return fa, fb


def union(spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The smallest [a, b) holding every span."""
    return min(s for s, _ in spans), max(e for _, e in spans)


def context_window(fa: int, fb: int, known: int, cap: int, context: int, right: bool = True) -> tuple[int, int]:
    """Window [wa, wb) around frames [fa, fb): up to `context` known frames each side (after the
    region only when `right`), one side's unused share given to the other, at most `cap` frames
    in all (the region itself is never cut: the caller splits regions longer than `cap`)."""
    free = max(cap - (fb - fa), 0)
    before_avail = max(min(fa, known), 0)
    after_avail = max(known - fb, 0) if right else 0
    before = min(before_avail, context, free)
    after = min(after_avail, context, free - before)
    spare = min(2 * context, free) - before - after
    if spare > 0:
        more = min(before_avail - before, spare)
        before += more
        after += min(after_avail - after, spare - more)
    return fa - before, fb + after


def align_window(wa: int, wb: int, align: int, lo: int = 0, hi: int | None = None) -> tuple[int, int]:
    """Grow [wa, wb) to a multiple of `align` frames: to the left while wa > lo, else to the right
    (up to `hi` when given; past it as a last resort)."""
    if align <= 1:
        return wa, wb
    short = (-(wb - wa)) % align
    left = min(short, max(wa - lo, 0))
    wa -= left
    right = short - left
    if hi is not None and right and wb + right > hi:   # shift left as far as lo allows instead
        back = min(wb + right - hi, max(wa - lo, 0))
        wa -= back
        right -= back
    return wa, wb + right


def keep_mask(wa: int, wb: int, regions: list[tuple[int, int]], known: int) -> np.ndarray:
    """(wb - wa,) float32: 1 for a known frame outside every region (kept), 0 for a frame to generate."""
    idx = np.arange(wa, wb)
    keep = idx < known
    for fa, fb in regions:
        keep &= ~((idx >= fa) & (idx < fb))
    return keep.astype(np.float32)


def official_canvas_frames(seconds: float, sr: int, hop: int, pad_seconds: float = 6.0,
                           max_samples: int | None = None) -> int:
    """Latent frames of the official Stable Audio 3 canvas for `seconds` of output: int((seconds + pad) * sr)
    samples rounded up to `hop`, then to 2 * hop (an even frame count), capped at max_samples
    (stable-audio-3, inference `generate`: 3 s -> 98 frames, 5 s -> 120 at 44.1 kHz / 4096)."""
    n = int((seconds + pad_seconds) * sr)
    n = -(-n // hop) * hop
    n = -(-n // (2 * hop)) * (2 * hop)
    if max_samples is not None:
        n = min(n, max_samples)
    return n // hop


def generate_frames(seconds: float, sr: int, hop: int, align: int = 2, cap: int | None = None) -> int:
    """The fewest latent frames holding `seconds` of audio, rounded up to `align` (even for SA3), capped."""
    n = max(int(math.ceil(seconds * sr / hop)), 1)
    n = -(-n // align) * align
    return min(n, cap) if cap is not None else n


def valid_frames(seconds: float, sr: int, hop: int) -> int:
    """Frames covering int(seconds * sr) samples: ceil(int(seconds * sr) / hop) (the official padding mask's
    valid length before the memory tokens are added)."""
    return -(-int(seconds * sr) // hop)


def runs(mask) -> list[tuple[int, int]]:
    """[start, end) runs of True in a 1-D boolean sequence."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return []
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def merge_runs(spans: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Sorted [start, end) runs joined wherever fewer than `gap` items lie between two of them.

    Why: encoding a run of latent frames costs its frames plus a margin of receptive field on
    each side, so two runs closer than 2 margins cost less as one (a drum hit's context left and
    right of it is encoded in one pass, its own few frames included)."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a - out[-1][1] < gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def group_regions(regions: list[tuple[int, int]], cap: int) -> list[list[tuple[int, int]]]:
    """Split sorted frame regions into groups whose union fits in `cap` frames (each group one window)."""
    groups: list[list[tuple[int, int]]] = []
    for r in sorted(regions):
        if groups and r[1] - groups[-1][0][0] <= cap:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups
