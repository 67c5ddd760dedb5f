"""Ableton Link as the jam's clock (optional: `.venv/bin/pip install -e '.[link]'`; the Link libraries are GPL-licensed,
so they stay out of the default install).

Link gives a tempo and a beat timeline on the host clock (CLOCK_MONOTONIC_RAW in microseconds on Linux, the
same clock `clock.now()` reads). Peers agree on the phase within a quantum, not on beat numbers, so the
quantum is one bar (numerator * 4 / denominator quarter notes) and bar lines sit where the phase is 0.
Link multicasts on every network interface: tests run it only inside a namespace holding only loopback.
"""

from __future__ import annotations

import numpy as np

from .clock import PPQN, ClockMap, FrameStamper, parse_sig


class LinkClock:
    """Joins (or starts) a Link session at `bpm`; `map(stamper)` gives the `ClockMap` of its timeline.

    Raises RuntimeError when the Link wheel (LinkPython-extern, import `link`) is not installed.
    """

    def __init__(self, bpm: float, sr: int, sig: str = "4/4"):
        try:
            import link
        except ImportError:
            raise RuntimeError("Ableton Link needs the optional extra (GPL-licensed): "
                               "from the repository root: .venv/bin/pip install -e '.[link]' (LinkPython-extern)") from None
        num, den = parse_sig(sig)
        self.quantum = num * 4.0 / den
        self.sr = sr
        self.tpb = PPQN * self.quantum
        self.link = link.Link(float(bpm))
        self.link.enabled = True
        self._map: ClockMap | None = None
        self._last_frame = None

    @property
    def peers(self) -> int:
        return self.link.numPeers()

    def map(self, stamper: FrameStamper, marks: int = 16) -> ClockMap | None:
        """The timeline at the newest audio frames: the tick at the newest mark's frame is the median over the
        last `marks` callback marks (a callback's entry time jitters; frames do not)."""
        recent = list(stamper.marks)[-marks:]
        if not recent:
            return self._map
        if self._map is not None and recent[-1][1] == self._last_frame:
            return self._map
        state = self.link.captureAppSessionState()
        tempo = float(state.tempo())
        fpt = 60.0 * self.sr / (PPQN * tempo)
        ref = recent[-1][1]
        ticks = [state.beatAtTime(int(t * 1e6), self.quantum) * PPQN + (ref - f) / fpt for t, f in recent]
        self._last_frame = ref
        self._map = ClockMap(sr=self.sr, ticks_per_bar=self.tpb, frames_per_tick=fpt, anchor_frame=float(ref),
                             anchor_tick=float(np.median(ticks)), running=True, source="link")
        return self._map

    def close(self) -> None:
        self.link.enabled = False
