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


def last_bars(cmap: ClockMap, end_frame: float, bars: int, held_from: int = 0) -> tuple[int, int, int]:
    """The last `bars` complete bars before `end_frame`: (first bar index, start frame, stop frame), frames
    rounded half up. Fewer bars when fewer are held since `held_from` (but at least one), else ValueError."""
    last = math.floor(cmap.tick_at_frame(end_frame) / cmap.ticks_per_bar)  # the bar end_frame lies in
    for n in range(bars, 0, -1):
        first = last - n
        start = math.floor(cmap.frame_of_bar(first) + 0.5)
        if start >= held_from:
            return first, start, math.floor(cmap.frame_of_bar(last) + 0.5)
    raise ValueError("not one complete bar has been recorded on the clock grid yet")
