"""The input's recent past, addressed by absolute frame, and the bars of it the clock grid names.

The audio callback writes every input block at its frame; the control thread cuts the last N complete bars
out of it (bar lines from the current `ClockMap`, rounded to frames) and hands them to the engine.
"""

from __future__ import annotations

import math

import numpy as np

from .clock import ClockMap


class RingBuffer:
    """The last `capacity` frames of a `channels`-channel input (float32), addressed by absolute frame."""

    def __init__(self, capacity: int, channels: int):
        if capacity <= 0 or channels <= 0:
            raise ValueError(f"ring buffer needs capacity > 0 and channels > 0, got {capacity}, {channels}")
        self.capacity, self.channels = int(capacity), int(channels)
        self.buf = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self.end = 0  # absolute frame one past the newest written frame

    @property
    def start(self) -> int:
        """Oldest absolute frame still held."""
        return max(0, self.end - self.capacity)

    def write(self, block: np.ndarray, frame: int) -> None:
        """Store `block` (frames, channels) as absolute frames [frame, frame + len). A gap since the last
        write is filled with silence; the callback's frames are contiguous so this only guards misuse."""
        n = len(block)
        if frame > self.end:
            self.write(np.zeros((min(frame - self.end, self.capacity), self.channels), np.float32),
                       frame - min(frame - self.end, self.capacity))
        if n >= self.capacity:
            block, frame, n = block[-self.capacity:], frame + n - self.capacity, self.capacity
        i = frame % self.capacity
        first = min(n, self.capacity - i)
        self.buf[i:i + first] = block[:first]
        self.buf[:n - first] = block[first:]
        self.end = frame + n

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as a (channels, frames) float32 copy. Raises ValueError when any of them is
        not held (overwritten already, or not yet recorded)."""
        if start < self.start or stop > self.end or stop < start:
            raise ValueError(f"frames [{start}, {stop}) are not in the ring buffer (holds [{self.start}, {self.end}))")
        idx = np.arange(start, stop) % self.capacity
        return np.ascontiguousarray(self.buf[idx].T)


class BarLines:
    """Where the bar lines fell, as the clock saw them half a bar later.

    Extrapolating today's clock map back several bars multiplies its tempo error (0.02 % over 3 bars is
    already 1.2 ms); the map of half a bar after a line has that line in the middle of its fitted window,
    where the fit is best. The control loop calls `update` often; a jump back (Start, Song Position) or a
    stopped clock clears the history.
    """

    def __init__(self, keep: int = 512):
        self.frames: dict[int, float] = {}
        self.keep = keep
        self.last: int | None = None

    def update(self, cmap: ClockMap | None, frame: float) -> None:
        if cmap is None or not cmap.running:
            self.frames.clear()
            self.last = None
            return
        settled = math.floor((cmap.tick_at_frame(frame) - cmap.ticks_per_bar / 2) / cmap.ticks_per_bar)
        if self.last is not None and settled < self.last:  # the position jumped back
            self.frames.clear()
            self.last = None
        start = settled if self.last is None else self.last + 1
        for bar in range(max(start, settled - 8), settled + 1):
            self.frames[bar] = cmap.frame_of_bar(bar)
        self.last = settled
        while len(self.frames) > self.keep:
            del self.frames[min(self.frames)]

    def frame_of_bar(self, cmap: ClockMap, bar: int) -> float:
        """The recorded line of `bar`, else the current map's."""
        return self.frames.get(bar, cmap.frame_of_bar(bar))


def last_bars(cmap: ClockMap, end_frame: float, bars: int, held_from: int = 0,
              lines: BarLines | None = None) -> tuple[int, int, int]:
    """The last `bars` complete bars before `end_frame`: (first bar index, start frame, stop frame), frames
    rounded half up; bar lines from `lines` where recorded, else from `cmap`. Fewer bars when fewer are held
    since `held_from` (but at least one), else ValueError."""
    line = (lambda b: lines.frame_of_bar(cmap, b)) if lines is not None else cmap.frame_of_bar
    last = math.floor(cmap.tick_at_frame(end_frame) / cmap.ticks_per_bar)  # the bar end_frame lies in
    for n in range(bars, 0, -1):
        first = last - n
        start = math.floor(line(first) + 0.5)
        if start >= held_from:
            return first, start, math.floor(line(last) + 0.5)
    raise ValueError("not one complete bar has been recorded on the clock grid yet")
