"""`dsp`: the no-weights backend. Beat-synchronous exemplar fill; short selections get a hit of the
same kind (or, with hit "remove", Janssen AR interpolation).

Works on any rate and channel count. It cannot make audio from nothing, so
it refuses `generate`, and answers `insufficient_context` instead of junk
when the file holds too little material around the region.

Takes: `variations` N asks for N audibly distinct takes (engine/dsp/takes.py);
when the material allows fewer, fewer come back (the engine reports it).
Every take is limited to the source's own peak. `task.regions` lists the
parts of the span to regenerate; the rest of the span is the source, bit for bit.

Caches (engine/cache.py ByteCache, content-keyed): unit features per
(source, rate, unit grid) and the onset-strength analysis per (source, rate,
block of frames). The tempo *decision* is never cached: each request estimates
it from the analysis of its own region's surroundings, so the same request
gets the same grid whatever was asked before.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..cache import ByteCache
from ..dsp import tempo
from ..dsp.exemplar import FillRequest, fill, onset_units
from ..dsp.shortgap import copy_fills, hit_in, replace_hit
from ..dsp.takes import distinct, limit_peak
from ..dsp.units import unit_grid
from ..errors import SegueError
from .base import Backend, Capabilities, JobContext, Task

SHORT_GAP_SECONDS = 0.1
TEMPO_WINDOW = 30.0          # seconds each side of the region the tempo is estimated on
# The engine hands this backend at most this much audio each side of the region (before `at`): donors
# and tempo come from there, so a 10-minute source costs a window, not the file (issue 8, fault 5).
CONTEXT_SECONDS = 60.0
FLUX_BLOCK = 2048            # onset-strength frames per cached block (~20 s)


class DspBackend(Backend):
    name = "dsp"

    def __init__(self, config=None):
        super().__init__(config)
        self.features = ByteCache(16 << 20)
        self.flux = ByteCache(8 << 20)

    def capabilities(self) -> Capabilities:
        return Capabilities(inpaint=True, continue_=True, generate=False, max_output_seconds=600.0,
                            removes_hits=True, short_selection_seconds=SHORT_GAP_SECONDS,
                            max_context_seconds=CONTEXT_SECONDS, request_options=frozenset())

    def info(self) -> dict:
        return {"device": "cpu", "dtype": "float32", "weights": "none"}

    # ------------------------------------------------------------------ inpaint

    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        regions = task.regen_regions()
        a, L = task.start_sample, task.frames
        for r0, rl in regions:
            if rl <= 0 or r0 < a or r0 + rl > a + L:
                raise SegueError("bad_region", f"region at sample {r0} ({rl} samples) lies outside the span "
                                 f"[{a}, {a + L})")
        if regions == [(a, L)]:
            return self._limit(task, self._inpaint_one(task, a, L, ctx))
        fills = []
        for i, (r0, rl) in enumerate(sorted(regions)):
            lo, hi = 0.1 + 0.8 * i / len(regions), 0.1 + 0.8 * (i + 1) / len(regions)
            ctx.progress(lo, f"region {i + 1}/{len(regions)}")
            fills.append((r0, rl, self._inpaint_one(task, r0, rl, ctx.part(lo, hi))))
        # Take v fills region r with that region's take v (its last one when it has fewer): takes
        # stay distinct as long as one region has that many distinct takes.
        count = max(len(f) for _, _, f in fills)
        outs = []
        for v in range(count):
            y = np.array(task.audio[:, a:a + L], dtype=np.float32, copy=True)
            for r0, rl, f in fills:
                y[:, r0 - a:r0 - a + rl] = f[min(v, len(f) - 1)]
            outs.append(y)
        return self._limit(task, outs, keep=[(r0 - a, rl) for r0, rl in regions])

    def _inpaint_one(self, task: Task, a: int, L: int, ctx: JobContext) -> list[np.ndarray]:
        x, n = task.audio, task.audio.shape[1]
        if L < SHORT_GAP_SECONDS * task.sr and (a > 0 or a + L < n):
            return self._short(task, a, L, ctx)
        if L > n - L:
            raise SegueError("insufficient_context", f"the region ({L / task.sr:.2f} s) is longer than the rest "
                             f"of the file ({(n - L) / task.sr:.2f} s): too little context to fill it honestly")
        return self._fill(replace(task, start_sample=a, frames=L, regions=[]), ctx, continuation=False)

    def _short(self, task: Task, a: int, L: int, ctx: JobContext) -> list[np.ndarray]:
        x, sr, N = task.audio, task.sr, task.variations
        onset = hit_in(x, a, L, sr) if task.hit != "remove" else None
        if onset is not None:
            ctx.progress(0.2, f"short selection holds a hit at {onset / sr:.3f} s: replacing it with a matching hit")
            outs = replace_hit(x, a, L, sr, onset, N)
            if outs:
                return outs
            ctx.progress(0.3, "no matching hit in the context: AR interpolation (Janssen)")
        else:
            ctx.progress(0.2, "short gap: AR interpolation (Janssen)")
        from ..dsp.janssen import janssen_fill

        outs = [janssen_fill(x, a, L).astype(np.float32)]
        if N > 1:   # further takes: copies of the best-matching stretches of the context
            for y in copy_fills(x, a, L, sr, N + 1, avoid_hits=onset is None and task.hit == "remove"):
                if len(outs) < N and distinct(y, outs):
                    outs.append(y)
        ctx.progress(0.9, f"generate {len(outs)}/{N}")
        return outs

    # ------------------------------------------------------------------ continue

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        if task.grid is None:
            raise SegueError("bad_option", "continue needs bpm")
        return self._limit(task, self._fill(task, ctx, continuation=True))

    # ------------------------------------------------------------------ shared

    def _limit(self, task: Task, outs: list[np.ndarray], keep=None) -> list[np.ndarray]:
        """No take peaks above the source's own peak (the kept source parts are left bit-identical)."""
        x = task.audio
        peak = max(float(x.max()), -float(x.min())) if x is not None and x.size else 1.0   # no |x| copy
        res = []
        for y in outs:
            z = limit_peak(y, peak, task.sr)
            if keep is not None and z is not y:      # multi-region: only the regenerated parts may change
                mask = np.zeros(y.shape[1], bool)
                for s, l in keep:
                    mask[s:s + l] = True
                z = np.where(mask[None, :], z, y).astype(np.float32)
            res.append(z)
        return res

    def _fill(self, task: Task, ctx: JobContext, continuation: bool) -> list[np.ndarray]:
        units, bar_aware, key = self._units(task, ctx)
        ctx.progress(0.3, "generate 1/2: choosing units")
        # An estimated grid holds only locally: donors come from the tempo window around the region.
        span = None if task.grid is not None else self._window(task)
        req = FillRequest(audio=task.audio, sr=task.sr, start=task.start_sample, length=task.frames, units=units,
                          bar_aware=bar_aware, continuation=continuation, seed=task.seed,
                          variations=task.variations, span=span)
        cache_key = (key, task.sr, units, task.audio.shape[1], span) if key else None
        outs = fill(req, self.features, cache_key, check=ctx.check)
        ctx.progress(0.9, f"generate 2/2: {len(outs)} distinct take(s) rendered")
        return outs

    def _units(self, task: Task, ctx: JobContext):
        if task.grid is not None:
            g = task.grid
            ctx.progress(0.1, f"grid: {g.bpm:g} BPM {g.num}/{g.den} given")
            return unit_grid(g, task.sr), True, self._key(task)
        ctx.progress(0.05, "analyse: estimating tempo")
        est = self._estimate(task, ctx)
        if est.grid is not None:
            ctx.progress(0.1, f"grid: {est.grid.bpm:.1f} BPM estimated (confidence {est.confidence:.2f})")
            return unit_grid(est.grid, task.sr), False, self._key(task)
        ctx.progress(0.1, "grid: no steady pulse found; working at onset level (250 ms units)")
        return onset_units(est.onsets, task.sr, task.start_sample), False, self._key(task)

    def _estimate(self, task: Task, ctx: JobContext) -> tempo.TempoEstimate:
        """The local tempo around this request's region: at most TEMPO_WINDOW s each side, the region's
        own frames silenced for inpaint (its content is not evidence)."""
        x, sr = task.audio, task.sr
        hop, n_fft = tempo.frame_params(sr)
        lo, hi = self._window(task)
        f0 = -(-lo // hop)
        f1 = max((hi - n_fft) // hop + 1, f0)
        flux = self._flux(task, f0, f1, ctx)
        if task.kind == "inpaint":
            i = np.arange(f0, f1)
            inside = (i * hop < task.start_sample + task.frames) & (i * hop + n_fft + hop > task.start_sample)
            flux[inside] = 0.0
        if len(flux) < 8:
            return tempo.TempoEstimate(None, 0.0, np.zeros(0))
        est = tempo.estimate_from_strength(tempo.detrend(flux), hop / sr)
        t0 = f0 * hop / sr
        grid = replace(est.grid, downbeat=est.grid.downbeat + t0) if est.grid is not None else None
        return tempo.TempoEstimate(grid, est.confidence, est.onsets + t0)

    @staticmethod
    def _key(task: Task):
        """Cache key of the task's audio: the source's content and where its window starts (the dsp
        caches index frames relative to the window), None when the source has no key."""
        return (task.source_key, task.window_start, task.audio.shape[1]) if task.source_key else None

    @staticmethod
    def _window(task: Task) -> tuple[int, int]:
        """Samples [lo, hi) within TEMPO_WINDOW seconds of the region."""
        w = int(TEMPO_WINDOW * task.sr)
        return max(task.start_sample - w, 0), min(task.start_sample + task.frames + w, task.audio.shape[1])

    def _flux(self, task: Task, f0: int, f1: int, ctx: JobContext) -> np.ndarray:
        """Raw onset flux for frames [f0, f1), joined from cached blocks of FLUX_BLOCK frames."""
        x, sr = task.audio, task.sr
        total = tempo.frame_count(x.shape[1], sr)
        parts = []
        for blk in range(f0 // FLUX_BLOCK, (max(f1, f0 + 1) - 1) // FLUX_BLOCK + 1):
            b0, b1 = blk * FLUX_BLOCK, min((blk + 1) * FLUX_BLOCK, total)

            def make(b0=b0, b1=b1):
                ctx.check()
                return tempo.raw_flux(x, sr, b0, b1)
            key = (self._key(task), sr, b0, b1)
            vals = self.flux.get_or_make(key, make) if task.source_key else make()
            parts.append((b0, vals))
        out = np.zeros(max(f1 - f0, 0))
        for b0, vals in parts:
            s, e = max(b0, f0), min(b0 + len(vals), f1)
            if e > s:
                out[s - f0:e - f0] = vals[s - b0:e - b0]
        return out
