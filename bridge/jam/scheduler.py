"""Where a clip starts, and the mixer that plays clips sample-exact inside the audio block.

`launch_bar` is the whole launch rule: the first bar line at or after the frame the clip is ready, whose bar
index is a multiple of the launch quantization (1, 2 or 4 bars). A clip that is late never starts mid-bar: it
waits for the next such bar line.

`Mixer.render` runs in the audio callback. It takes new clips and commands from an inbox (a deque, so the
control thread never blocks it), decides the launch bar with the freshest clock map, and writes each playing
clip into the output block at the exact frame offset of its bar line, with short linear declick fades.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .clock import ClockMap


def launch_bar(cmap: ClockMap, ready_frame: float, quantize: int = 1) -> int:
    """Smallest bar b with b % quantize == 0 whose line (rounded to a frame) is at or after `ready_frame`."""
    if quantize < 1:
        raise ValueError(f"launch quantization must be >= 1 bar, got {quantize}")
    bar = math.floor(cmap.tick_at_frame(ready_frame) / cmap.ticks_per_bar)
    bar -= bar % quantize
    while math.floor(cmap.frame_of_bar(bar) + 0.5) < ready_frame:
        bar += quantize
    return bar


def start_frame(cmap: ClockMap, bar: int) -> int:
    """The frame a clip launched on `bar` starts at (the bar line rounded half up)."""
    return math.floor(cmap.frame_of_bar(bar) + 0.5)


@dataclass
class Clip:
    """Audio (frames, channels) float32 to launch on a bar line. `bar` None: the next launch bar."""

    audio: np.ndarray
    id: str = ""
    loop: bool = False
    quantize: int = 1
    bar: int | None = None
    info: dict = field(default_factory=dict)


@dataclass
class Voice:
    clip: Clip
    start: int  # absolute frame of the clip's first sample
    stop_at: int | None = None  # absolute frame its fade-out begins


class Mixer:
    """Plays clips on bar lines. Thread model: `submit`/`stop` from any thread, `render` in the audio callback.

    `offset`: frames to start before the bar line (output latency).
    `fade`: declick fade length in frames (fade-in at each start, fade-out at the end, on stop and when a new
    clip replaces this one). `late_frames`: a bar line the callback only sees after it passed by at most this
    many frames (clock map jitter) still launches, skipping into the clip so it stays on the grid; later than
    that, the clip waits for the next launch bar.
    """

    def __init__(self, channels: int, fade: int = 96, late_frames: int = 480, offset: int = 0):
        self.channels, self.fade, self.late_frames = channels, max(0, int(fade)), late_frames
        self.offset = offset  # frames: start this much before the bar line (output latency compensation)
        self.inbox: deque = deque()
        self.queued: list[Clip] = []
        self.voices: list[Voice] = []
        self.launched: deque[dict] = deque(maxlen=64)  # launch records, newest last (read by status)
        self.loop_all: bool | None = None

    # -- control thread -------------------------------------------------------------------------
    def submit(self, clip: Clip) -> None:
        self.inbox.append(("clip", clip))

    def stop(self) -> None:
        """Fade out everything playing and drop what is queued."""
        self.inbox.append(("stop", None))

    def set_loop(self, loop: bool) -> None:
        self.inbox.append(("loop", loop))

    # -- audio callback -------------------------------------------------------------------------
    def render(self, out: np.ndarray, frame0: int, cmap: ClockMap | None) -> None:
        """Add the clips sounding in absolute frames [frame0, frame0 + len(out)) into `out` (frames, ch)."""
        n = len(out)
        end = frame0 + n
        while self.inbox:
            kind, value = self.inbox.popleft()
            if kind == "clip":
                self.queued.append(value)
            elif kind == "stop":
                self.queued.clear()
                for v in self.voices:
                    v.stop_at = frame0 if v.stop_at is None else min(v.stop_at, frame0)
            elif kind == "loop":
                for v in self.voices:
                    v.clip.loop = value
        running = cmap is not None and cmap.running
        if not running:
            # Defined behaviour when the clock stops: what plays fades out now; queued clips stay and are
            # scheduled afresh on the first launch bar once the clock runs again.
            for v in self.voices:
                if v.stop_at is None:
                    v.stop_at = frame0
            for c in self.queued:
                c.bar = None
        else:
            for c in list(self.queued):
                if c.bar is None:
                    c.bar = launch_bar(cmap, frame0 + self.offset, c.quantize)
                s = start_frame(cmap, c.bar) - self.offset
                far = end + (c.quantize + 1) * cmap.frames_per_bar  # a Song Position jump moved the grid
                if s < frame0 - self.late_frames or s > far:  # passed unseen (a stall), or jumped: re-target
                    c.bar = launch_bar(cmap, frame0 + self.offset, c.quantize)
                    s = start_frame(cmap, c.bar) - self.offset
                if s < end:
                    self.queued.remove(c)
                    for v in self.voices:  # the new clip replaces what plays, crossfading at its start
                        if v.stop_at is None or v.stop_at > s:
                            v.stop_at = max(s, frame0)
                    self.voices.append(Voice(c, s))
                    self.launched.append({"id": c.id, "bar": c.bar, "start": s, "frames": len(c.audio),
                                          "loop": c.loop, **c.info})
        for v in list(self.voices):
            if not self._play(v, out, frame0):
                self.voices.remove(v)

    def _play(self, v: Voice, out: np.ndarray, frame0: int) -> bool:
        """Mix voice `v` into `out`; False once it has finished."""
        audio, length, fade = v.clip.audio, len(v.clip.audio), self.fade
        n = len(out)
        pos = np.arange(frame0 - v.start, frame0 - v.start + n)  # position in the (looped) clip
        live = pos >= 0
        if not v.clip.loop:
            live &= pos < length
        if v.stop_at is not None:
            live &= np.arange(frame0, frame0 + n) < v.stop_at + fade
        if not live.any():
            return pos[-1] < 0 or (v.clip.loop and v.stop_at is None)
        idx = pos[live] % length
        gain = np.ones(len(idx), dtype=np.float32)
        if fade:
            gain = np.minimum(gain, (idx + 1) / np.float32(fade + 1))  # fade-in at each (re)start
            gain = np.minimum(gain, (length - idx) / np.float32(fade + 1))  # fade-out at each end
            if v.stop_at is not None:
                t = np.arange(frame0, frame0 + n)[live] - v.stop_at
                gain = np.minimum(gain, np.clip(1.0 - (t + 1) / np.float32(fade + 1), 0.0, 1.0))
        seg = audio[idx] * gain[:, None]
        for ch in range(out.shape[1]):
            out[live, ch] += seg[:, ch % seg.shape[1]]
        return True
