"""`dsp`: the no-weights backend. Beat-synchronous exemplar fill, Janssen AR for short gaps.

Works on any rate and channel count. It cannot make audio from nothing, so
it refuses `generate`, and answers `insufficient_context` instead of junk
when the file holds too little material around the region.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..dsp import tempo
from ..dsp.exemplar import FeatureCache, FillRequest, fill, onset_units
from ..dsp.units import unit_grid
from ..dsp.janssen import janssen_fill
from ..errors import SegueError
from .base import Backend, Capabilities, JobContext, Task

SHORT_GAP_SECONDS = 0.1
TEMPO_WINDOW = 30.0


class DspBackend(Backend):
    name = "dsp"

    def __init__(self, config=None):
        super().__init__(config)
        self.features = FeatureCache()
        self.tempi: dict = {}

    def capabilities(self) -> Capabilities:
        return Capabilities(inpaint=True, continue_=True, generate=False, max_output_seconds=600.0)

    def info(self) -> dict:
        return {"device": "cpu", "dtype": "float32", "weights": "none"}

    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        n = task.audio.shape[1]
        a, L = task.start_sample, task.frames
        if L < SHORT_GAP_SECONDS * task.sr and (a > 0 or a + L < n):
            ctx.progress(0.2, "short gap: AR interpolation (Janssen)")
            y = janssen_fill(task.audio, a, L)
            ctx.progress(0.9, "generate 1/1")
            return [y.astype(np.float32)] * task.variations
        if L > n - L:
            raise SegueError("insufficient_context", f"the region ({L / task.sr:.2f} s) is longer than the rest "
                             f"of the file ({(n - L) / task.sr:.2f} s): too little context to fill it honestly")
        return self._fill(task, ctx, continuation=False)

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        if task.grid is None:
            raise SegueError("bad_option", "continue needs bpm")
        return self._fill(task, ctx, continuation=True)

    def _fill(self, task: Task, ctx: JobContext, continuation: bool) -> list[np.ndarray]:
        units, bar_aware, key = self._units(task, ctx)
        ctx.progress(0.3, "generate 1/2: choosing units")
        req = FillRequest(audio=task.audio, sr=task.sr, start=task.start_sample, length=task.frames, units=units,
                          bar_aware=bar_aware, continuation=continuation, seed=task.seed,
                          variations=task.variations)
        cache_key = (key, task.sr, units, task.audio.shape[1]) if key else None
        outs = fill(req, self.features, cache_key, check=ctx.check)
        ctx.progress(0.9, "generate 2/2: rendered")
        return outs

    def _units(self, task: Task, ctx: JobContext):
        if task.grid is not None:
            g = task.grid
            ctx.progress(0.1, f"grid: {g.bpm:g} BPM {g.num}/{g.den} given")
            return unit_grid(g, task.sr), True, task.source_key
        ctx.progress(0.05, "analyse: estimating tempo")
        key = (task.source_key, task.sr)
        est = self.tempi.get(key) if task.source_key else None
        if est is None:
            # The local tempo: at most TEMPO_WINDOW seconds each side of the region (also bounds the cost).
            lo = max(task.start_sample - int(TEMPO_WINDOW * task.sr), 0)
            hi = min(task.start_sample + task.frames + int(TEMPO_WINDOW * task.sr), task.audio.shape[1])
            mono = task.audio[:, lo:hi].mean(axis=0)
            if task.kind == "inpaint":  # the region's content is not evidence
                mono[task.start_sample - lo:task.start_sample + task.frames - lo] = 0.0
            est = tempo.estimate(mono, task.sr)
            if est.grid is not None and lo:
                est = tempo.TempoEstimate(replace(est.grid, downbeat=est.grid.downbeat + lo / task.sr),
                                          est.confidence, est.onsets + lo / task.sr)
            if task.source_key:
                self.tempi[key] = est
        if est.grid is not None:
            ctx.progress(0.1, f"grid: {est.grid.bpm:.1f} BPM estimated (confidence {est.confidence:.2f})")
            return unit_grid(est.grid, task.sr), False, task.source_key
        ctx.progress(0.1, "grid: no steady pulse found; working at onset level (250 ms units)")
        return onset_units(est.onsets, task.sr, task.start_sample), False, task.source_key
