"""Beat-synchronous exemplar inpainting and continuation (the `dsp` backend's core).

The region to fill is covered by grid-unit "slots". Each slot gets a "donor":
a unit of known audio elsewhere in the file, copied with the same offset
within the unit, so onsets stay on the grid. Donors are chosen jointly by a
Viterbi search over a similarity graph between units:

- the edges of the region must fit: the units before the donor look like the
  units before the region (and, for inpaint, the units after the last donor
  look like the units after the region); partly known edge slots must match
  their known sub-divisions;
- consecutive donors should be consecutive units (a copy of real, continuous
  audio); a jump costs a fixed penalty plus how different the jump target is
  from the natural successor;
- donors at the same position in the bar are strongly preferred.

Rendering copies each run of consecutive donors in one piece, joins runs with
short equal-power crossfades, matches each run's loudness to the region's
surroundings (or, inside a decay, to the decay's level), and joins the source at the region edges through a crossfade
from an AR extrapolation of the source, so the first and last samples continue
the audio around the region without a click. Seeded noise on the costs makes
different seeds pick among the best candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SegueError
from ..cache import ByteCache
from ..seams import join_source
from .takes import distinct
from .units import BANDS, SUBDIVISIONS, UnitGrid, normalise, pairwise, unit_features

RUN_FADE_SECONDS = 0.010     # crossfade between donor runs (half on each side of the boundary)
EDGE_FADE_SECONDS = 0.020    # crossfade from the source's extrapolation into the fill
JUMP_COST = 0.35             # a jump between non-consecutive donors, in units of the median distance
POSITION_COST = 2.0          # a donor at another position in the bar
DISTANCE_COST = 0.05         # donors far away in time (music evolves)
NOISE = 0.12                 # seeded Gumbel noise: picks among near-equal candidates
MAX_CANDIDATES = 768
CONTEXT_WEIGHTS = (1.0, 0.75, 0.5, 0.5)   # units 1..4 away from each region edge
FINE_COST = 1.0          # full-resolution spectrum of the unit next to each edge (tells song sections apart)
FINE_FFT = 1024
# Parts change at bar lines (a loop, a pattern, a layer switched on or off): the known units of the
# slot's own bar predict what the region holds better than units across a bar line, so context
# units in the same bar as the edge slot (and the full-resolution edge inside it) count this much more.
SAME_BAR_WEIGHT = 2.0
GAIN_RANGE = (0.5, 2.0)


@dataclass
class FillRequest:
    audio: np.ndarray        # (channels, n): inpaint: the whole file; continue: the audio before `start`
    sr: int
    start: int
    length: int
    units: UnitGrid
    bar_aware: bool          # False when the grid was estimated: bar positions are unknown
    continuation: bool
    seed: int = 0
    variations: int = 1
    span: tuple[int, int] | None = None   # draw donors only from samples [lo, hi) (a local, estimated grid)


DIVERSITY_COST = 1.0     # each earlier take that used a (slot, donor) pair makes it this much dearer


def fill(req: FillRequest, cache: ByteCache | None = None, cache_key=None, check=lambda: None) -> list[np.ndarray]:
    """Up to req.variations audibly distinct takes, each (channels, req.length) float32.

    Take 1 is the best path under seeded noise; each further take re-runs the search with the
    (slot, donor) pairs of earlier takes made dearer, and is kept only when it differs audibly from
    every kept take (takes.distinct). Fewer takes come back when the material allows no more.
    `cache` (a ByteCache) keeps unit features under `cache_key`. Raises SegueError insufficient_context.
    """
    x, sr, a, L, ug = req.audio, req.sr, req.start, req.length, req.units
    n = x.shape[1]
    known_end = n if not req.continuation else a        # continuation: nothing after `a` is known
    b = min(a + L, n) if not req.continuation else a    # first known sample after the region
    run_fade = max(int(RUN_FADE_SECONDS * sr), 1)

    # Units wholly inside the file, and which of them are known (clear of the region by a fade).
    k_first = int(np.ceil(-ug.origin / ug.length - 1e-9))
    k_last = int(np.floor((known_end - ug.origin) / ug.length + 1e-9)) - 1
    if req.span is not None:
        k_first = max(k_first, int(np.ceil((req.span[0] - ug.origin) / ug.length - 1e-9)))
        k_last = min(k_last, int(np.floor((req.span[1] - ug.origin) / ug.length + 1e-9)) - 1)
    if k_last < k_first:
        known_s = (known_end if not req.continuation else a) / sr
        raise SegueError("insufficient_context", f"{'the audio before the continuation point' if req.continuation else 'the file'} "
                         f"({known_s:.3f} s) holds no whole grid unit ({ug.length / sr:.3f} s) to build from")
    ks = np.arange(k_first, k_last + 1)
    starts, ends = ug.start(ks), ug.start(ks + 1)
    if req.continuation:
        known = ends + run_fade <= a
    else:
        known = (ends + run_fade <= a) | (starts - run_fade >= b)
    if known.sum() < max(2, ug.per_bar):
        raise SegueError("insufficient_context", f"only {int(known.sum())} whole grid units "
                         f"({known.sum() * ug.length / sr:.2f} s) of audio lie outside the region; "
                         "at least a bar is needed to draw from")

    def analyse():
        return normalise(unit_features(x, sr, ug, ks))
    feats = cache.get_or_make(cache_key, analyse) if cache is not None and cache_key is not None else analyse()
    check()

    slots = np.arange(ug.index_at(a), ug.index_at(a + L - 1) + 1)
    cand = ks[known]
    if len(cand) > MAX_CANDIDATES:  # keep the nearest: far donors are penalised anyway
        centre = (slots[0] + slots[-1]) / 2
        cand = np.sort(cand[np.argsort(np.abs(cand - centre))[:MAX_CANDIDATES]])
    costs = _costs(req, feats, ks, known, slots, cand, a, b)
    check()

    outs: list[np.ndarray] = []
    used = np.zeros_like(costs.unary)
    for attempt in range(3 * req.variations + 2):
        if len(outs) >= req.variations:
            break
        rng = np.random.default_rng(req.seed + attempt)
        noisy = costs.unary + NOISE * rng.gumbel(size=costs.unary.shape) + DIVERSITY_COST * used
        path = _viterbi(noisy, costs.transition)
        used[np.arange(len(slots)), path] += 1.0
        y = _render(req, slots, cand[path], a, b, run_fade)
        if distinct(y, outs):
            outs.append(y)
        check()
    return outs


@dataclass
class _Costs:
    unary: np.ndarray        # (slots, candidates)
    transition: np.ndarray   # (candidates, candidates)


def _costs(req: FillRequest, feats, ks, known, slots, cand, a, b) -> _Costs:
    ug = req.units
    k_first = ks[0]
    idx = {int(k): i for i, k in enumerate(ks)}
    is_known = {int(k) for k in ks[known]}
    F = feats
    Fc = F[cand - k_first]
    d_cc = pairwise(Fc, Fc)
    scale = float(np.median(d_cc[d_cc > 0])) if np.any(d_cc > 0) else 1.0

    def dist_rows(k: int, offs: np.ndarray) -> np.ndarray:
        """Distance between unit k and units cand+offs (missing or unknown -> 1.5 median)."""
        out = np.full(len(cand), 1.5 * scale)
        if k not in is_known:
            return out
        for i, m in enumerate(cand + offs):
            if int(m) in is_known:
                d = F[idx[int(m)]] - F[idx[k]]
                out[i] = float(np.mean(d * d))
        return out

    J = len(slots)
    unary = np.zeros((J, len(cand)))
    # Left context: the two units before the region against the two before each donor.
    # Edges: the units before the region against those before each donor (and after, for inpaint),
    # at unit resolution over CONTEXT_UNITS units, and at full spectral resolution over the last one.
    def bar_weight(k: int, other: float) -> float:
        """SAME_BAR_WEIGHT when unit k lies in the bar of `other` (a unit index, or a fractional one
        for an edge), else 1; 1 when bar positions are unknown."""
        if not (req.bar_aware and ug.per_bar > 1):
            return 1.0
        return SAME_BAR_WEIGHT if k // ug.per_bar == int(np.floor(other)) // ug.per_bar else 1.0

    first, last = int(slots[0]), int(slots[-1])
    for i, w in enumerate(CONTEXT_WEIGHTS, start=1):
        unary[0] += w * bar_weight(first - i, first) * dist_rows(first - i, -i)
    unary[0] += _partial(req, F, idx, slots[0], cand, a, b)
    # the fine window ends at `a`: inside the first slot's bar unless `a` is on that bar's line
    in_bar_l = bar_weight(ug.index_at(a - 1), first)
    unary[0] += in_bar_l * FINE_COST * scale * _fine_edge(req, slots[0], cand, a, before=True)
    if not req.continuation and b < req.audio.shape[1]:
        for i, w in enumerate(CONTEXT_WEIGHTS, start=1):
            unary[-1] += w * bar_weight(last + i, last) * dist_rows(last + i, i)
        unary[-1] += _partial(req, F, idx, slots[-1], cand, a, b)
        in_bar_r = bar_weight(ug.index_at(b), last)
        unary[-1] += in_bar_r * FINE_COST * scale * _fine_edge(req, slots[-1], cand, b, before=False)
    if req.bar_aware and ug.per_bar > 1:
        mismatch = (cand[None, :] - slots[:, None]) % ug.per_bar != 0
        unary += POSITION_COST * scale * mismatch
    span = max(len(ks), 1)
    unary += DISTANCE_COST * scale * np.abs(cand[None, :] - slots[:, None]) / span

    # Transition m -> m': free when m' = m + 1, else a jump judged against m's natural successor.
    succ_known = np.array([int(m) + 1 in is_known for m in cand])
    succ_rows = np.array([idx.get(int(m) + 1, 0) for m in cand])
    d_succ = pairwise(F[succ_rows], Fc)
    trans = JUMP_COST * scale + np.where(succ_known[:, None], d_succ, 1.5 * scale)
    consecutive = cand[None, :] == cand[:, None] + 1
    trans[consecutive] = 0.0
    return _Costs(unary / scale, trans / scale)


def _partial(req: FillRequest, F, idx, k: int, cand, a: int, b: int) -> np.ndarray:
    """Match the known sub-divisions of a partly known edge slot against each donor's."""
    ug = req.units
    if int(k) not in idx:
        return np.zeros(len(cand))
    s0 = float(ug.origin + k * ug.length)
    sub = ug.length / SUBDIVISIONS
    lo = s0 + np.arange(SUBDIVISIONS) * sub
    hi = lo + sub
    known = hi <= a if req.continuation else (hi <= a) | (lo >= b)
    if not known.any():
        return np.zeros(len(cand))
    mask = np.repeat(known, BANDS)
    target = F[idx[int(k)]][mask]
    rows = np.array([idx[int(m)] for m in cand])
    d = F[rows][:, mask] - target[None, :]
    return np.mean(d * d, axis=1) * known.mean()


def _fine_edge(req: FillRequest, k: int, cand, edge: int, before: bool) -> np.ndarray:
    """Full-resolution log-spectral distance between the unit-long audio on one side of a region
    edge and the audio at the same place relative to each donor, normalised to median 1.

    Donor m for slot k is the source shifted by d = start(k) - start(m), so the donor's side
    of the edge is the window moved by -d. Windows that reach outside the file cost 1.5.
    """
    x, ug = req.audio, req.units
    n = x.shape[1]
    width = int(min(ug.length, 4 * FINE_FFT))
    lo = edge - width if before else edge
    d = ug.start(k) - ug.start(cand)
    starts = lo - d
    ok = (starts >= 0) & (starts + width <= n) & (lo >= 0) & (lo + width <= n)
    if req.continuation:
        ok &= starts + width <= edge
    else:
        region_lo, region_hi = req.start, req.start + req.length
        ok &= (starts + width <= region_lo) | (starts >= region_hi)
    out = np.full(len(cand), np.nan)
    if not ok.any() or lo < 0 or lo + width > n:
        return np.zeros(len(cand))
    hop = max(width // 4, 1)
    frame = min(FINE_FFT, width)
    offs = np.arange(0, width - frame + 1, hop)[:4]
    win = np.hanning(frame).astype(np.float32)

    def spec(st: np.ndarray) -> np.ndarray:
        idx = st[:, None, None] + offs[None, :, None] + np.arange(frame)[None, None, :]
        frames = x[:, idx].mean(axis=0)       # gathers only the windows: no whole-file mono copy
        p = np.abs(np.fft.rfft(frames * win, axis=-1)) ** 2
        return 10.0 * np.log10(p + 1e-10).reshape(len(st), -1)

    target = spec(np.array([lo]))[0]
    floor = target.max() - 80.0
    target = np.maximum(target, floor)
    sel = np.flatnonzero(ok)
    for i in range(0, len(sel), 64):  # bounded memory on long files
        chunk = sel[i:i + 64]
        cs = np.maximum(spec(starts[chunk]), floor)
        out[chunk] = np.mean((cs - target[None, :]) ** 2, axis=1)
    med = np.nanmedian(out) if np.any(np.isfinite(out)) else 1.0
    med = med if med > 0 else 1.0
    return np.where(np.isfinite(out), out / med, 1.5)


def _viterbi(unary: np.ndarray, trans: np.ndarray) -> np.ndarray:
    J, M = unary.shape
    cost = unary[0].copy()
    back = np.zeros((J, M), dtype=np.int64)
    for j in range(1, J):
        total = cost[:, None] + trans
        back[j] = np.argmin(total, axis=0)
        cost = total[back[j], np.arange(M)] + unary[j]
    path = np.empty(J, dtype=np.int64)
    path[-1] = int(np.argmin(cost))
    for j in range(J - 1, 0, -1):
        path[j - 1] = back[j, path[j]]
    return path


def _render(req: FillRequest, slots, donors, a: int, b: int, fade: int) -> np.ndarray:
    x, ug, L = req.audio, req.units, req.length
    C = x.shape[0]
    # Runs of consecutive donors share one offset: copy each run in one piece.
    offsets = ug.start(slots) - ug.start(donors)
    bounds = [0] + [j for j in range(1, len(slots)) if offsets[j] != offsets[j - 1]] + [len(slots)]
    y = np.zeros((C, L), dtype=np.float32)
    half = fade // 2 + 1
    gains: dict[int, float] = {}
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        d = int(offsets[r0])
        lo = a if r0 == 0 else int(ug.start(slots[r0]))
        hi = a + L if r1 == len(slots) else int(ug.start(slots[r1]))
        t0, t1 = max(lo - half, a), min(hi + half, a + L)   # this run's span and its fades
        if d not in gains:
            gains[d] = _run_gain(x, a, b, d, req.sr, req.continuation)
        seg = _slice(x, t0 - d, t1 - d) * np.float32(gains[d])
        if r0 > 0:
            _ramp(seg, t0, lo - half, 2 * half, rising=True)
        if r1 < len(slots):
            _ramp(seg, t0, hi - half, 2 * half, rising=False)
        y[:, t0 - a:t1 - a] += seg
    if not req.continuation:
        y *= np.float32(_decay_gain(x, a, b, req.sr, y))
    m = min(int(EDGE_FADE_SECONDS * req.sr), L // 2)
    return join_source(y, req.audio, a, m if m >= 2 else 0, right=not req.continuation)


# A region inside a dying sound (a song's last hit ringing out, a break): its level is the decay's,
# and no donor has it (the music elsewhere is louder; on the bench corpus such a fill came out 11.5 dB
# too loud). Recognised from the source alone: the DECAY_FIT_SECONDS before the region are one clean
# decay (10 ms levels on a falling line in dB), that line carried across the region lands within
# DECAY_MATCH_DB of where the audio after the region starts, and the second after keeps falling. The
# take is then set to the mean power of the line between the two edge levels (turned down when its
# donors are louder music, up when they came from further down the same decay; at most DECAY_MAX_DB).
DECAY_FIT_SECONDS = 0.5
DECAY_EDGE_SECONDS = 0.05    # edge levels: the last / first 50 ms of source at each side of the region
DECAY_MIN_SLOPE = -3.0       # dB/s: flatter is not a decay
DECAY_FIT_DB = 3.0           # RMS distance of the 10 ms levels from their line
DECAY_DROP_DB = 6.0          # the source after the region starts at least this far below the source before
DECAY_MATCH_DB = 6.0
DECAY_MAX_DB = 24.0


def _decay_gain(x: np.ndarray, a: int, b: int, sr: int, y: np.ndarray) -> float:
    """Gain for a take y (channels, b - a) of region [a, b) of x (channels, n) lying inside a decay;
    1.0 when the source around the region is not one decay running through it."""
    n = x.shape[1]
    fit, edge, frame, quarter = int(DECAY_FIT_SECONDS * sr), int(DECAY_EDGE_SECONDS * sr), sr // 100, sr // 4
    if a - fit < 0 or b + 4 * quarter > n or frame < 1:
        return 1.0

    def db(seg: np.ndarray) -> float:
        return 10.0 * np.log10(np.mean(np.square(seg, dtype=np.float64)) + 1e-20)
    left, right = db(x[:, a - edge:a]), db(x[:, b:b + edge])
    if right > left - DECAY_DROP_DB:
        return 1.0
    after = [db(x[:, b + i * quarter:b + (i + 1) * quarter]) for i in range(4)]
    if after[0] > right + 1.0 or any(q1 > q0 + 1.0 for q0, q1 in zip(after[:-1], after[1:])):
        return 1.0                                  # something starts after the region: not a decay
    k = fit // frame
    frames = x[:, a - k * frame:a].reshape(x.shape[0], k, frame)
    levels = 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=(0, 2)) + 1e-20)
    t = (np.arange(k) + 0.5) * frame / sr
    slope, icpt = np.polyfit(t, levels, 1)
    if slope > DECAY_MIN_SLOPE or np.sqrt(np.mean((levels - slope * t - icpt) ** 2)) > DECAY_FIT_DB:
        return 1.0
    if abs(left + slope * (b - a) / sr - right) > DECAY_MATCH_DB:
        return 1.0
    line = left + (right - left) * np.linspace(0.0, 1.0, 64)
    target, have = np.mean(10.0 ** (line / 10.0)), np.mean(np.square(y, dtype=np.float64))
    if have <= 0:
        return 1.0
    return float(np.clip(np.sqrt(target / have), 10 ** (-DECAY_MAX_DB / 20), 10 ** (DECAY_MAX_DB / 20)))


def _slice(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """x[:, lo:hi] as a new array, zero where it falls outside the signal."""
    out = np.zeros((x.shape[0], hi - lo), dtype=np.float32)
    a, b = max(lo, 0), min(hi, x.shape[1])
    if b > a:
        out[:, a - lo:b - lo] = x[:, a:b]
    return out


def _ramp(seg: np.ndarray, seg_start: int, fade_start: int, width: int, rising: bool) -> None:
    """Equal-power fade in place: sin ramp in (before it: silence), or cos ramp out (after it: silence)."""
    lo, hi = max(fade_start - seg_start, 0), min(fade_start + width - seg_start, seg.shape[1])
    u = np.clip((np.arange(lo, hi) + seg_start - fade_start) / width, 0.0, 1.0)
    if rising:
        seg[:, :lo] = 0.0
        seg[:, lo:hi] *= np.sin(0.5 * np.pi * u).astype(np.float32)
    else:
        seg[:, lo:hi] *= np.cos(0.5 * np.pi * u).astype(np.float32)
        seg[:, max(hi, 0):] = 0.0


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


# How a copied run's level is set (bench/quality_dsp.py --gain-rules compares them on the corpus):
# "surround": the region's surroundings (1 s each side) over the donor's (the run keeps its level
#   relative to its own surroundings); "near": the same on 0.25 s; "sides": each side's ratio on its
#   own, geometric mean; "none": the donor's own level; "material": like "surround", but a side counts
#   only when the region's and the donor's windows hold the same kind of sound (spectral shape within
#   MATERIAL_DB), so a level ratio between different parts is not taken for a gain (docs/benchmarks.md,
#   "Loudness worst case": a better median and fewer spans over 3 dB, but some spans far worse).
GAIN_RULE = "surround"
MATERIAL_DB = 5.0        # RMS over bands of the dB difference with its mean removed
MATERIAL_BANDS = 12
MATERIAL_FFT = 2048


def _band_db(seg: np.ndarray, sr: int) -> np.ndarray:
    """(MATERIAL_BANDS,) mean power in dB of seg (channels, n >= 2 * MATERIAL_FFT) in log-spaced bands
    from 60 Hz to 12 kHz (or Nyquist): Hann frames of MATERIAL_FFT samples, hop half of that."""
    m = seg.mean(axis=0)
    hop = MATERIAL_FFT // 2
    k = (len(m) - MATERIAL_FFT) // hop + 1
    idx = np.arange(MATERIAL_FFT)[None, :] + hop * np.arange(k)[:, None]
    p = (np.abs(np.fft.rfft(m[idx] * np.hanning(MATERIAL_FFT), axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(MATERIAL_FFT, 1.0 / sr)
    edges = np.geomspace(60.0, min(12000.0, sr / 2), MATERIAL_BANDS + 1)
    return np.array([10 * np.log10(p[(freqs >= lo) & (freqs < hi)].sum() + 1e-12)
                     for lo, hi in zip(edges[:-1], edges[1:])])


def _run_gain(x, a: int, b: int, d: int, sr: int, continuation: bool) -> float:
    """Loudness of the region's surroundings over the loudness of the donor's surroundings."""
    n = x.shape[1]
    rule = GAIN_RULE
    if rule == "none":
        return 1.0
    w = sr // 4 if rule == "near" else sr  # one second each side
    if rule == "material":
        here, there = [], []
        for lo, hi in [(max(a - w, 0), a)] + ([] if continuation else [(b, min(b + w, n))]):
            lo2, hi2 = max(lo - d, 0), min(hi - d, n)
            if continuation:
                hi2 = min(hi2, a)
            if (not continuation and lo2 < b and hi2 > a) or min(hi - lo, hi2 - lo2) < 2 * MATERIAL_FFT:
                continue
            diff = _band_db(x[:, lo:hi], sr) - _band_db(x[:, lo2:hi2], sr)
            if np.sqrt(np.mean((diff - diff.mean()) ** 2)) <= MATERIAL_DB:
                here.append(x[:, lo:hi])
                there.append(x[:, lo2:hi2])
        if not here:
            return 1.0
        num, den = _rms(np.concatenate(here, axis=1)), _rms(np.concatenate(there, axis=1))
        return float(np.clip(num / den, *GAIN_RANGE)) if num >= 1e-5 and den >= 1e-5 else 1.0
    if rule == "sides":
        ratios = []
        for lo, hi in [(max(a - w, 0), a)] + ([] if continuation else [(b, min(b + w, n))]):
            lo2, hi2 = max(lo - d, 0), min(hi - d, n)
            if continuation:
                hi2 = min(hi2, a)
            if hi2 <= lo2 or (not continuation and lo2 < b and hi2 > a):
                continue
            num, den = _rms(x[:, lo:hi]), _rms(x[:, lo2:hi2])
            if num >= 1e-5 and den >= 1e-5:
                ratios.append(np.log(num / den))
        return float(np.clip(np.exp(np.mean(ratios)), *GAIN_RANGE)) if ratios else 1.0
    here = [x[:, max(a - w, 0):a]]
    if not continuation:
        here.append(x[:, b:min(b + w, n)])
    windows = [(max(a - w, 0), a)] + ([] if continuation else [(b, min(b + w, n))])
    there = []
    for lo, hi in windows:
        lo2, hi2 = max(lo - d, 0), min(hi - d, n)
        if continuation:
            hi2 = min(hi2, a)
        elif lo2 < b and hi2 > a:
            continue  # the donor's surroundings overlap the region being replaced: unknown
        if hi2 > lo2:
            there.append(x[:, lo2:hi2])
    num = _rms(np.concatenate(here, axis=1)) if here else 0.0
    den = _rms(np.concatenate(there, axis=1)) if there else 0.0
    if num < 1e-5 or den < 1e-5:
        return 1.0
    return float(np.clip(num / den, *GAIN_RANGE))


def onset_units(onsets: np.ndarray, sr: int, start: int, seconds: float = 0.25) -> UnitGrid:
    """Units for audio without a steady pulse: fixed length, phased on the onset nearest before the region."""
    before = onsets[onsets * sr <= start]
    origin = float(before[-1] * sr) if len(before) else 0.0
    return UnitGrid(origin=origin, length=seconds * sr, per_bar=1)
