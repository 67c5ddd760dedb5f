"""The band's clock as a map from song position (MIDI ticks, 24 per quarter note) to audio frames.

Everything here up to the adapters is pure arithmetic on frames, testable without I/O:

- `ClockMap`: an immutable snapshot "tick t sounds at frame anchor_frame + (t - anchor_tick) * frames_per_tick".
  The audio callback reads the current one (a single attribute read, atomic under the GIL).
- `MidiClockFollower`: MIDI clock (0xF8 at 24 ppqn), Start/Stop/Continue and Song Position Pointer in,
  `ClockMap` out. Tempo comes from an outlier-rejecting straight-line fit of tick frames over the last bar
  (short window after a tempo change), the anchor is the fit's value at the latest tick.
- `FrameStamper`: converts the wall-clock arrival stamps of MIDI messages into audio frames by interpolating
  between the audio callbacks' own stamps (live.md: a fit of raw arrival times is half a period late and
  breaks on xruns; this interpolation plus half a period gave -2..+7 frames at 120 BPM).

Then the I/O adapters: `MidiInput` (mido + python-rtmidi, stamps messages on arrival because mido drops
rtmidi's delta times) and `MidiClockSender` (Segue as the clock master when the tempo is fixed).

Defined behaviour when the clock stops: Stop (0xFC) freezes the song position; the map's `running` is False.
No tick for `lost_ticks` tick periods (at least LOST_MIN_SECONDS) while running counts as a stop too
("clock lost"); the position then waits for Start, Continue or a Song Position Pointer. Ticks while stopped
still update the tempo. A device that stalls and then sends the ticks it owes in one burst moves the
position by those ticks, but they are kept out of the tempo fit (they say nothing about the tempo), and a
fit outside FIT_BPM is never published: one burst used to fit 24,000 BPM and lose the clock for good.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

PPQN = 24  # MIDI clock ticks per quarter note
TICKS_PER_SPP = 6  # a Song Position Pointer counts sixteenth notes ("MIDI beats")
FIT_BPM = (10.0, 1000.0)  # a tempo fit outside this is a burst of ticks, not a band: kept out of the map
BURST_FRACTION = 0.25  # a tick this soon after the last one (in tick periods) is owed, not timed: not fitted
LOST_MIN_SECONDS = 0.15  # silence shorter than this never counts as a lost clock (8 ticks are 67 ms at 300 BPM)


def now() -> float:
    """Seconds on the clock Link and JACK use on Linux (CLOCK_MONOTONIC_RAW); monotonic elsewhere."""
    raw = getattr(time, "CLOCK_MONOTONIC_RAW", None)
    return time.clock_gettime(raw) if raw is not None else time.monotonic()


def parse_sig(sig: str) -> tuple[int, int]:
    """'7/8' -> (7, 8). Raises ValueError naming the bad signature."""
    try:
        num, den = (int(x) for x in sig.split("/"))
    except ValueError:
        raise ValueError(f"time signature {sig!r} must look like N/D, e.g. 4/4 or 7/8") from None
    if not (1 <= num <= 32) or den not in (1, 2, 4, 8, 16, 32):
        raise ValueError(f"time signature {sig!r}: numerator 1-32, denominator a power of two up to 32")
    return num, den


def ticks_per_bar(sig: str) -> float:
    """MIDI clock ticks in one bar: 24 per quarter note, a bar is num * 4 / den quarter notes."""
    num, den = parse_sig(sig)
    return PPQN * num * 4.0 / den


@dataclass(frozen=True)
class ClockMap:
    """Song position in ticks <-> audio frames at sample rate `sr` (Hz). Frames are the jam's own frame count."""

    sr: int
    ticks_per_bar: float
    frames_per_tick: float
    anchor_frame: float
    anchor_tick: float
    running: bool
    source: str = "midi"  # "midi", "link" or "fixed"
    state: str = "playing"  # "playing", "stopped", "lost", "waiting"

    @property
    def bpm(self) -> float:
        """Quarter notes per minute."""
        return 60.0 * self.sr / (PPQN * self.frames_per_tick)

    @property
    def frames_per_bar(self) -> float:
        return self.ticks_per_bar * self.frames_per_tick

    def frame_at_tick(self, tick: float) -> float:
        return self.anchor_frame + (tick - self.anchor_tick) * self.frames_per_tick

    def tick_at_frame(self, frame: float) -> float:
        return self.anchor_tick + (frame - self.anchor_frame) / self.frames_per_tick

    def frame_of_bar(self, bar: int) -> float:
        """Frame of the line that starts bar `bar` (bar 0 starts at song position 0)."""
        return self.frame_at_tick(bar * self.ticks_per_bar)

    def bar_beat(self, frame: float) -> tuple[int, float]:
        """(bar, beat) at `frame`: bar counted from 0, beat in quarter notes from the bar line (float)."""
        tick = self.tick_at_frame(frame)
        bar = math.floor(tick / self.ticks_per_bar)
        return bar, (tick - bar * self.ticks_per_bar) / PPQN


def fixed_map(bpm: float, sr: int, sig: str = "4/4", start_frame: float = 0.0) -> ClockMap:
    """A steady clock at `bpm` (quarter notes per minute) whose bar 0 starts at `start_frame`."""
    if not (20.0 <= bpm <= 400.0):
        raise ValueError(f"--bpm {bpm:g} is outside 20-400")
    return ClockMap(sr=sr, ticks_per_bar=ticks_per_bar(sig), frames_per_tick=60.0 * sr / (PPQN * bpm),
                    anchor_frame=float(start_frame), anchor_tick=0.0, running=True, source="fixed")


def robust_line(x: np.ndarray, y: np.ndarray, floor: float, rounds: int = 3,
                w: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """Least-squares y = a + b x, refitted up to `rounds` times without the points whose residual exceeds
    max(3.5 robust sigmas, floor) (a burst of late ticks after a stall pulls the first fit, so one round is
    not enough). `w`: residual weights (numpy.polyfit's), None = equal. The first robust sigma comes from the residuals against the median-slope line, which a
    few outliers cannot pull. Returns (a, b, inlier mask). Needs len(x) >= 2."""
    keep = np.ones(len(x), dtype=bool)
    # Start from the median of slopes between points half the window apart: robust to a minority of late
    # ticks, and each slope spans many ticks so the quantisation to JACK periods barely moves it.
    h = max(1, len(x) // 2)
    dx, dy = x[h:] - x[:-h], y[h:] - y[:-h]
    b = float(np.median(dy[dx > 0] / dx[dx > 0])) if np.any(dx > 0) else 0.0
    a = float(np.median(y - b * x))
    for _ in range(rounds):
        res = y - (a + b * x)
        mad = float(np.median(np.abs(res[keep] - np.median(res[keep])))) * 1.4826
        new = np.abs(res - np.median(res[keep])) <= max(3.5 * mad, floor)
        if new.sum() < 2:
            break
        keep = new
        b, a = (float(v) for v in np.polyfit(x[keep], y[keep], 1, w=w[keep] if w is not None else None))
    return a, b, keep


class MidiClockFollower:
    """MIDI clock -> `ClockMap`. Feed it every clock-related message with its frame; read `.map`.

    `window`: ticks in the tempo fit (default one 4/4 bar). `change`: relative tempo difference between the
    last `short` ticks and the whole window that counts as a tempo change (the window then restarts).
    """

    def __init__(self, sr: int, sig: str = "4/4", window: int = 96, short: int = 24, change: float = 0.02,
                 lost_ticks: float = 8.0):
        self.sr = sr
        self.tpb = ticks_per_bar(sig)
        self.window, self.short, self.change, self.lost_ticks = window, short, change, lost_ticks
        self.running = False
        self.state = "waiting"
        self.next_tick = 0.0  # song position (ticks) of the next clock tick
        self.fpt: float | None = None  # frames per tick, once known
        self.pts: deque[tuple[float, float]] = deque(maxlen=window)  # (tick, frame) since the last jump
        self.free: deque[tuple[float, float]] = deque(maxlen=window)  # ticks while stopped: tempo only
        self.free_count = 0.0
        self.last_tick_frame: float | None = None   # the latest tick's frame (None after a jump)
        self.heard: float | None = None              # the latest tick, Start or Continue: for "lost"
        self.map: ClockMap | None = None
        # FIT_BPM as frames per tick (the fastest tempo is the fewest frames)
        self.fpt_range = tuple(60.0 * sr / (PPQN * bpm) for bpm in reversed(FIT_BPM))

    # -- messages -------------------------------------------------------------------------------
    def feed(self, frame: float, kind: str, value: int | None = None) -> None:
        """kind: 'clock', 'start', 'stop', 'continue' or 'songpos' (value = sixteenth notes)."""
        if kind == "clock":
            self._tick(frame)
        elif kind == "start":
            self.running, self.state, self.next_tick = True, "playing", 0.0
            self.pts.clear()
            self.heard, self.last_tick_frame = frame, None   # silence counts from here; the next tick is timed
        elif kind == "continue":
            self.running, self.state = True, "playing"
            self.pts.clear()
            self.heard, self.last_tick_frame = frame, None
        elif kind == "stop":
            self._halt("stopped")
        elif kind == "songpos":
            self.next_tick = float(value or 0) * TICKS_PER_SPP
            self.pts.clear()
        self._publish()

    def _lost_after(self) -> float:
        """Frames of silence after which a running clock counts as lost."""
        return max(self.lost_ticks * (self.fpt or self.sr), LOST_MIN_SECONDS * self.sr)

    def check(self, frame: float) -> None:
        """Call regularly with the current frame: a running clock silent for `lost_ticks` ticks is lost."""
        if self.running and self.fpt and self.heard is not None:
            if frame - self.heard > self._lost_after():
                self._halt("lost")
                self._publish()

    def _halt(self, state: str) -> None:
        # The position freezes where the clock stopped; the next tick after Continue is `next_tick`.
        self.running, self.state = False, state
        self.pts.clear()

    def _tick(self, frame: float) -> None:
        prev, self.last_tick_frame = self.last_tick_frame, frame
        self.heard = frame
        burst = self.fpt is not None and prev is not None and frame - prev < BURST_FRACTION * self.fpt
        if self.running:
            if not burst:
                self.pts.append((self.next_tick, frame))
            self.next_tick += 1.0
            self._fit(self.pts)
        else:
            if self.free and frame - self.free[-1][1] > self._lost_after():
                self.free.clear()
            if not burst:
                self.free.append((self.free_count, frame))
            self.free_count += 1.0
            self._fit(self.free)

    def _fit(self, pts: deque) -> None:
        if len(pts) < 2:
            return
        arr = np.asarray(pts, dtype=np.float64)
        x, y = arr[:, 0] - arr[-1, 0], arr[:, 1]
        floor = 0.02 * (self.fpt or (y[-1] - y[0]) / max(x[-1] - x[0], 1.0))
        # Newer ticks weigh more (residual weights 0.2 -> 1): on a tempo ramp the fitted line then bends
        # less far from the newest ticks (simulated 2 %-over-5-bars ramps: median error at the next tick
        # 30 -> 18 frames), at almost no cost on a steady clock (4 -> 6 frames).
        a, b, _ = robust_line(x, y, floor, w=np.linspace(0.2, 1.0, len(x)))
        if len(pts) >= 2 * self.short:
            sa, sb, _ = robust_line(x[-self.short:], y[-self.short:], floor)
            if abs(sb - b) > self.change * b:  # the tempo changed: forget the ticks before the change
                keep = list(pts)[-self.short:]
                pts.clear()
                pts.extend(keep)
                a, b = sa, sb
        if self.fpt_range[0] <= b <= self.fpt_range[1]:
            self.fpt = b
            self._anchor = (float(arr[-1, 0]), a)

    def _publish(self) -> None:
        if self.fpt is None:
            return
        if self.running and self.pts:
            tick = self.pts[-1][0]
            frame = self._anchor[1] if len(self.pts) >= 2 else self.pts[-1][1]
            running, state = True, "playing"
        else:
            # Stopped, lost, or Start/Continue seen but no tick yet: keep the last position, update the tempo.
            prev = self.map
            tick, frame = (prev.anchor_tick, prev.anchor_frame) if prev else (self.next_tick, 0.0)
            running, state = False, "waiting" if self.running else self.state
        self.map = ClockMap(sr=self.sr, ticks_per_bar=self.tpb, frames_per_tick=self.fpt, anchor_frame=frame,
                            anchor_tick=tick, running=running, source="midi", state=state)


class FrameStamper:
    """Wall-clock stamps -> audio frames, by interpolation between audio-callback stamps.

    The audio callback calls `mark(t, frame)` at its entry with `frame` = first frame of its block.
    `to_frame(t)` returns the frame at wall time `t` plus `offset` frames (half a period: rtmidi delivers an
    event at the start of the JACK cycle it falls in, losing its place inside the cycle), or None when `t`
    is newer than the latest mark (ask again after the next callback).
    """

    def __init__(self, keep: int = 256):
        self.marks: deque[tuple[float, int]] = deque(maxlen=keep)
        self.offset = 0.0

    def mark(self, t: float, frame: int, block: int) -> None:
        self.marks.append((t, frame))
        self.offset = block / 2.0

    def to_frame(self, t: float) -> float | None:
        marks = list(self.marks)  # one C-level copy: the audio thread appends meanwhile
        if not marks or t > marks[-1][0]:
            return None
        # Newest first: events are converted soon after they arrive.
        for i in range(len(marks) - 1, 0, -1):
            t0, f0 = marks[i - 1]
            t1, f1 = marks[i]
            if t0 <= t:
                frac = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
                return f0 + frac * (f1 - f0) + self.offset
        return marks[0][1] + self.offset  # older than every mark: clamp to the oldest


MIDI_CLOCK_KINDS = {"clock", "start", "stop", "continue", "songpos"}


class MidiInput:
    """A MIDI input (mido over python-rtmidi) whose messages are stamped with `now()` on arrival.

    `port`: an existing port's name (or a unique part of it) to connect to, or None to open a virtual port
    named `virtual_name` that other software connects to. `api`: python-rtmidi API for mido's backend
    ('UNIX_JACK', 'LINUX_ALSA', 'MACOSX_CORE', 'WINDOWS_MM'); None = mido's default.
    Raises RuntimeError with a readable message when the port cannot be opened.
    """

    def __init__(self, port: str | None, api: str | None = None, virtual_name: str = "in",
                 client_name: str = "segue-jam"):
        self.events: deque[tuple[float, object]] = deque(maxlen=65536)
        backend = _mido_backend(api)
        try:
            if port is None:
                self.port = backend.open_input(virtual_name, virtual=True, client_name=client_name,
                                               callback=self._on_message)
            else:
                self.port = backend.open_input(_pick(port, backend.get_input_names(), "MIDI input"),
                                               client_name=client_name, callback=self._on_message)
        except RuntimeError:
            raise
        except Exception as e:  # rtmidi raises its own SystemError subclasses
            raise RuntimeError(f"cannot open MIDI input ({_api_hint(api)}): {e}") from None

    def _on_message(self, msg) -> None:
        self.events.append((now(), msg))

    def close(self) -> None:
        self.port.close()


class MidiClockSender:
    """Segue as the clock master: sends 0xF8 ticks, Start and Stop to a MIDI output.

    `poll(map, frame, t)` is called from the jam's control thread with the current frame; it sends every tick
    whose frame has passed. Jitter is one control period (a few ms), fine for following gear.
    """

    def __init__(self, port: str | None, api: str | None = None, client_name: str = "segue-jam-clock"):
        import mido

        self._mido = mido
        backend = _mido_backend(api)
        try:
            if port is None:
                self.port = backend.open_output("clock_out", virtual=True, client_name=client_name)
            else:
                self.port = backend.open_output(_pick(port, backend.get_output_names(), "MIDI output"),
                                                client_name=client_name)
        except Exception as e:
            raise RuntimeError(f"cannot open MIDI clock output ({_api_hint(api)}): {e}") from None
        self.next_tick: float | None = None
        self.lock = threading.Lock()

    def poll(self, cmap: ClockMap, frame: float) -> None:
        with self.lock:
            if self.next_tick is None:
                # A Song Position Pointer counts sixteenth notes and the next tick after Continue sounds
                # at that sixteenth: start ticking at the next one (it was rounded down, so gear ran up
                # to five ticks late, 23-65 ms at 120 BPM).
                tick = cmap.tick_at_frame(frame)
                self.next_tick = float(math.ceil(tick / TICKS_PER_SPP - 1e-9) * TICKS_PER_SPP)
                self.port.send(self._mido.Message("songpos", pos=int(self.next_tick // TICKS_PER_SPP)))
                self.port.send(self._mido.Message("continue" if self.next_tick else "start"))
            while cmap.frame_at_tick(self.next_tick) <= frame:
                self.port.send(self._mido.Message("clock"))
                self.next_tick += 1.0

    def close(self) -> None:
        with self.lock:
            try:
                self.port.send(self._mido.Message("stop"))
            finally:
                self.port.close()


def _mido_backend(api: str | None):
    import mido

    return mido.Backend(f"mido.backends.rtmidi/{api}" if api else None, load=True)


def _api_hint(api: str | None) -> str:
    return f"MIDI API {api}" if api else "mido's default MIDI API; choose one with --midi-api, e.g. UNIX_JACK"


def _pick(name: str, names: list[str], what: str) -> str:
    """The port named `name`, or the only one containing it. Raises RuntimeError listing the choices."""
    if name in names:
        return name
    hits = [n for n in names if name.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    listed = ", ".join(names) or "none"
    kind = "matches several" if hits else "matches no"
    raise RuntimeError(f"{what} {name!r} {kind} port (available: {listed})")
