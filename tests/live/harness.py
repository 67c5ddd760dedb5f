"""Test-side JACK harness (JACK-Client): a named JACK server on the dummy driver in sync mode, a "band" that
plays audio and MIDI at exact JACK frames, and a recorder that stores what arrives, by JACK frame.

Why these choices (../shared/reference/live.md): sync mode (-S) so no cycle is skipped or doubled under
load; a named server so nothing touches another JACK server; the dummy driver's clock falls behind wall time
after stalls, so everything here is measured in JACK frames (`last_frame_time`), never in wall time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np

SR = 48000
PERIOD = 256


class JackServer:
    """`jackd -n NAME -S -d dummy`; sets JACK_DEFAULT_SERVER for this process and its children."""

    def __init__(self, name: str, sr: int = SR, period: int = PERIOD):
        self.name, self.sr, self.period = name, sr, period
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why JACK tests cannot run here, or None."""
        if shutil.which("jackd") is None:
            return "jackd not installed (Debian jackd2; scripts/jack.sh installs it)"
        try:
            import jack  # noqa: F401
            import mido  # noqa: F401
            import rtmidi  # noqa: F401
        except ImportError as e:
            return f"{e.name} not installed (scripts/jack.sh installs JACK-Client, mido, python-rtmidi)"
        return None

    def start(self) -> None:
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["MIDO_BACKEND"] = "mido.backends.rtmidi/UNIX_JACK"
        os.environ.setdefault("JACK_NO_AUDIO_RESERVATION", "1")
        self.log = open(f"/tmp/jackd-{self.name}.log", "w")
        self.proc = subprocess.Popen(["jackd", "-n", self.name, "-S", "-d", "dummy", "-r", str(self.sr),
                                      "-p", str(self.period)], stdout=self.log, stderr=subprocess.STDOUT)
        ok = subprocess.run(["jack_wait", "-s", self.name, "-w", "-t", "10"], capture_output=True, text=True)
        if ok.returncode != 0 or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"jackd did not start: {open(self.log.name).read()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class Band:
    """A JACK client that plays `audio` from JACK frame `audio_start` and MIDI events at exact JACK frames,
    and reads MIDI arriving on its input with their frames. `on_cycle(frame, n, t)` runs every cycle."""

    def __init__(self, name: str = "band", channels: int = 2):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.outs = [self.client.outports.register(f"out_{i}") for i in range(channels)]
        self.midi_out = self.client.midi_outports.register("midi_out")
        self.midi_in = self.client.midi_inports.register("midi_in")
        self.lock = threading.Lock()
        self.events: list[tuple[int, bytes]] = []
        self.sent: list[tuple[int, bytes]] = []  # (frame actually written, message)
        self.received: list[tuple[int, bytes]] = []
        self.audio: np.ndarray | None = None  # (frames, channels)
        self.audio_start = 0
        self.on_cycle = None
        self.client.set_process_callback(self._process)
        self.client.activate()

    @property
    def frame(self) -> int:
        return self.client.frame_time

    def schedule(self, events) -> None:
        with self.lock:
            self.events = sorted(self.events + [(int(f), bytes(m)) for f, m in events])

    def _process(self, n: int) -> None:
        f0 = self.client.last_frame_time
        if self.on_cycle is not None:
            self.on_cycle(f0, n, time.monotonic())
        self.midi_out.clear_buffer()
        with self.lock:
            k = 0
            while k < len(self.events) and self.events[k][0] < f0 + n:
                f, msg = self.events[k]
                self.midi_out.write_midi_event(max(0, f - f0), msg)
                self.sent.append((max(f, f0), msg))
                k += 1
            del self.events[:k]
        for offset, data in self.midi_in.incoming_midi_events():
            self.received.append((f0 + offset, bytes(data)))
        for c, port in enumerate(self.outs):
            buf = port.get_array()
            buf.fill(0.0)
            if self.audio is not None:
                a, b = max(f0, self.audio_start), min(f0 + n, self.audio_start + len(self.audio))
                if a < b:
                    buf[a - f0:b - f0] = self.audio[a - self.audio_start:b - self.audio_start, c % self.audio.shape[1]]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class Recorder:
    """A JACK client that records its inputs from JACK frame `start` for `frames` frames."""

    def __init__(self, name: str = "rec", channels: int = 2):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.ins = [self.client.inports.register(f"in_{i}") for i in range(channels)]
        self.start, self.data = 0, np.zeros((0, channels), np.float32)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def arm(self, start: int, frames: int) -> None:
        self.data = np.zeros((frames, len(self.ins)), np.float32)
        self.start = start

    def _process(self, n: int) -> None:
        f0 = self.client.last_frame_time
        a, b = max(f0, self.start), min(f0 + n, self.start + len(self.data))
        if a < b:
            for c, port in enumerate(self.ins):
                self.data[a - self.start:b - self.start, c] = port.get_array()[a - f0:b - f0]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def wait_for_ports(client, names: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        have = {p.name for p in client.get_ports()}
        if all(n in have for n in names):
            return
        time.sleep(0.1)
    raise TimeoutError(f"JACK ports {names} did not appear (have {sorted(have)})")


def rewire(client, pairs: list[tuple[str, str]], drop_system_for: str = "PortAudio") -> None:
    """Disconnect `drop_system_for`'s ports from system:* (PortAudio auto-connects them), then connect pairs."""
    for p in client.get_ports(drop_system_for + ":"):
        for q in client.get_all_connections(p):
            if q.name.startswith("system:"):
                client.disconnect(p, q) if p.is_output else client.disconnect(q, p)
    for a, b in pairs:
        client.connect(a, b)


def wait_frames(client, frame: int, timeout: float = 120.0) -> None:
    """Wait until JACK's frame time passes `frame` (measured in frames; the wall-clock timeout is only a guard)."""
    deadline = time.monotonic() + timeout
    while client.frame_time < frame:
        if time.monotonic() > deadline:
            raise TimeoutError(f"JACK frame time {client.frame_time} did not reach {frame}")
        time.sleep(0.02)


def clock_events(t0: int, bpm: float, ticks: int, start: bool = True, sr: int = SR) -> list[tuple[int, bytes]]:
    """Start (a little before tick 0) then `ticks` MIDI clock ticks at exact frames from `t0`."""
    fpt = 60.0 * sr / (24 * bpm)
    ev = [(t0 - 64, b"\xfa")] if start else []
    return ev + [(t0 + int(np.floor(k * fpt + 0.5)), b"\xf8") for k in range(ticks)]
