"""`segue jam`: ties the clock, the ring buffer, the engine and the mixer together.

Threads (none of them generates: generation runs in the `segue serve` process):
- the audio callback (audio.py): frames, ring buffer, mixer;
- the control loop (`Jam.run`): MIDI messages -> frames -> clock follower / triggers, clock map -> callback,
  MIDI clock out, generate-ahead, the status line;
- the engine worker: writes the ring buffer's bars to a WAV under the engine's allowed folder, sends
  /segue/continue (protocol v1), reads the result and hands the clip to the mixer;
- the OSC listener on jam's own port, and the terminal keys.
"""

from __future__ import annotations

import json
import math
import os
import queue
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..client import EngineClient, EngineGone, NoEngine, request_args
from ..protocol import Double, ProtocolError, decode, encode
from .clock import MIDI_CLOCK_KINDS, ClockMap, FrameStamper, MidiClockFollower, fixed_map, parse_sig
from .ringbuffer import BarLines, RingBuffer, last_bars
from .scheduler import Clip, Mixer
from .triggers import KEY_HELP, Action, TriggerMap, osc_action


AUDIO_STALL_SECONDS = 5.0  # no audio callback this long while running: the audio is gone

@dataclass
class JamConfig:
    engine_host: str = "127.0.0.1"
    engine_port: int = 9137
    token: str | None = None
    clock: str = "midi"  # "midi", "link" or "fixed"
    bpm: float | None = None
    sig: str = "4/4"
    midi_in: str | None = None  # port to connect to; None = a virtual port "segue-jam:in"
    trigger_in: str | None = None  # a second MIDI input for triggers only
    midi_api: str | None = None
    clock_out: str | None = None  # "virtual" or a port name: send MIDI clock (fixed tempo / Link)
    device_in: str | None = None
    device_out: str | None = None
    in_channels: list[int] = field(default_factory=lambda: [0, 1])
    out_channels: list[int] = field(default_factory=lambda: [0, 1])
    samplerate: int | None = None
    blocksize: int = 0
    audio_api: str | None = None
    context: int = 4
    bars: float = 4.0
    quantize: int = 1
    loop: bool = False
    ahead: bool = False
    fade_ms: float = 2.0
    offset_ms: float = 0.0
    buffer_seconds: float = 90.0
    workdir: Path | None = None
    triggers: Path | None = None
    osc_port: int = 9138
    backend: str | None = None
    prompt: str | None = None
    seed: int = 0
    timeout: float = 60.0
    status_line: bool = False
    learn: str | None = None


@dataclass
class Job:
    id: str
    src: Path
    seconds: float
    bars: float
    bpm: float
    seed: int
    ahead: bool
    trigger_frame: float
    source_bars: tuple[int, int]
    t_trigger: float = field(default_factory=time.monotonic)
    context: int = 0          # bars of context it was cut with (0: a variation of another job's source)


class Jam:
    def __init__(self, cfg: JamConfig, out=sys.stdout):
        self.cfg = cfg
        self.out = out
        self.num, self.den = parse_sig(cfg.sig)
        self.stop_event = threading.Event()
        self.messages: deque[str] = deque(maxlen=20)
        self.jobs: "queue.Queue[Job | None]" = queue.Queue()
        self.dropped: set[str] = set()   # ids of jobs a Stop dropped while the engine worked on them
        self.current: Job | None = None  # the job the engine worker is running
        self.launch_pending = False  # ahead mode: a trigger came while the ahead job was still running
        self.ahead_tried = -(2**31)  # ahead mode: the bar in which the last ahead job was started
        self.ready: tuple[Job, Clip] | None = None
        self.last_job: Job | None = None
        self.results: deque[dict] = deque(maxlen=32)
        self.results_total = 0
        self.bars_out = float(cfg.bars)
        self.loop = cfg.loop
        self.ahead = cfg.ahead
        self.learn_key = False
        self.inputs = []
        self.clock_sender = None
        self.link = None
        self.follower: MidiClockFollower | None = None
        self.sock: socket.socket | None = None
        self.audio = None
        self._files: deque[Path] = deque()
        self.bar_lines = BarLines()
        self.lock = threading.RLock()  # actions vs the engine worker's hand-over of results
        self.audio_lost = False  # the audio stream stopped calling back (server or device gone)

    # ---------------------------------------------------------------- setup
    def open(self) -> None:
        """Open audio, MIDI, the clock and the OSC port. Raises RuntimeError/ValueError with a clear message."""
        from .audio import JamAudio

        cfg = self.cfg
        self.workdir = Path(cfg.workdir or _default_workdir())
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.trigger_map = TriggerMap.load(cfg.triggers) if cfg.triggers else TriggerMap()
        self.stamper = FrameStamper()
        # Sizes depend on the stream's rate: open the stream first, then give it its buffers.
        self.mixer = Mixer(len(cfg.out_channels))
        self.ring = RingBuffer(1, len(cfg.in_channels))
        self.audio = JamAudio(self.ring, self.mixer, self.stamper, cfg.in_channels, cfg.out_channels,
                              cfg.device_in, cfg.device_out, cfg.samplerate, cfg.blocksize, cfg.audio_api)
        self.sr = self.audio.sr
        self.ring = self.audio.ring = RingBuffer(int(cfg.buffer_seconds * self.sr), len(cfg.in_channels))
        self.mixer.fade = int(round(cfg.fade_ms * self.sr / 1000.0))
        self.mixer.offset = int(round(cfg.offset_ms * self.sr / 1000.0))
        if cfg.clock == "fixed":
            self.audio.cmap = fixed_map(cfg.bpm, self.sr, cfg.sig)
        elif cfg.clock == "midi":
            self.follower = MidiClockFollower(self.sr, cfg.sig)
        elif cfg.clock == "link":
            from .link import LinkClock

            self.link = LinkClock(cfg.bpm or 120.0, self.sr, cfg.sig)
        self._open_midi()
        if cfg.clock_out:
            from .clock import MidiClockSender

            self.clock_sender = MidiClockSender(None if cfg.clock_out == "virtual" else cfg.clock_out, cfg.midi_api)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("127.0.0.1", cfg.osc_port))
        except OSError as e:
            raise RuntimeError(f"cannot listen for OSC on 127.0.0.1:{cfg.osc_port}: {e.strerror}") from None
        self.sock.settimeout(0.2)
        if cfg.learn:
            self.trigger_map.learn(Action(cfg.learn))
            self.say(f"learn: press the note or CC for '{cfg.learn}'")

    def _open_midi(self) -> None:
        from .clock import MidiInput

        cfg = self.cfg
        try:
            self.inputs.append(MidiInput(cfg.midi_in, cfg.midi_api))
        except RuntimeError as e:
            if cfg.clock == "midi":
                raise
            self.say(f"no MIDI input, triggers by keys and OSC only: {e}")
        if cfg.trigger_in:
            self.inputs.append(MidiInput(cfg.trigger_in, cfg.midi_api, virtual_name="triggers",
                                         client_name="segue-jam-triggers"))

    def close(self) -> None:
        self.stop_event.set()
        self.jobs.put(None)
        if self.audio is not None and not self.audio_lost:
            self.audio.close()  # terminates PortAudio first (JACK may go away after us)
        if not self.audio_lost:   # JACK MIDI ports of a server that went away cannot be closed either
            for i in self.inputs:
                i.close()
            if self.clock_sender is not None:
                self.clock_sender.close()
        if self.link is not None:
            self.link.close()
        if self.sock is not None:
            self.sock.close()

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        """Start everything and loop until stopped (`stop_event`, 'q', SIGINT/SIGTERM in the CLI)."""
        self.audio.start()
        threading.Thread(target=self._worker, name="jam-engine", daemon=True).start()
        threading.Thread(target=self._osc_loop, name="jam-osc", daemon=True).start()
        threading.Thread(target=self._check_engine, name="jam-ping", daemon=True).start()
        self.say(f"segue jam: {self.sr} Hz, clock {self.cfg.clock}, OSC on 127.0.0.1:{self.cfg.osc_port}; "
                 + KEY_HELP)
        last_status = 0.0
        if self.cfg.clock == "midi":
            port = self.cfg.midi_in or "segue-jam:in (a virtual port)"
            self.say(f"waiting for MIDI clock on {port}; or use --bpm or --clock link")
        reported: set[str] = set()
        heard_frame, heard_at = self.audio.frame, time.monotonic()
        while not self.stop_event.is_set():
            if self.audio.frame != heard_frame:
                heard_frame, heard_at = self.audio.frame, time.monotonic()
            elif time.monotonic() - heard_at > AUDIO_STALL_SECONDS:
                # No audio callback for seconds: the JACK server or the device went away. PortAudio cannot
                # reconnect, and closing it would wait on the dead server: say so and end (cli exits at once).
                self.audio_lost = True
                self.say(f"audio stopped: no audio callback for {AUDIO_STALL_SECONDS:g} s (the JACK server or "
                         "the audio device went away); segue jam ends, start it again once the audio is back")
                self.stop_event.set()
                break
            try:
                self._step()
            except Exception as e:  # report each distinct fault once; the audio keeps running
                text = f"internal error in the control loop: {type(e).__name__}: {e}"
                if text not in reported:
                    reported.add(text)
                    self.say(text)
            if self.audio.error and self.audio.error not in reported:
                reported.add(self.audio.error)
                self.say(f"internal error in the audio callback: {self.audio.error}")
            t = time.monotonic()
            if self.cfg.status_line and t - last_status > 0.2:
                last_status = t
                print("\r" + self.status_text() + "\x1b[K", end="", file=sys.stderr, flush=True)
            time.sleep(0.002)

    def _step(self) -> None:
        frame = self.audio.frame
        for inp in self.inputs:
            ev = inp.events
            while ev:
                t, msg = ev[0]
                f = self.stamper.to_frame(t)
                if f is None:
                    break  # newer than the last audio callback: convert it after the next one
                ev.popleft()
                if msg.type in MIDI_CLOCK_KINDS:
                    if self.follower is not None:
                        self.follower.feed(f, msg.type, getattr(msg, "pos", None))
                    continue
                got = self.trigger_map.handle(msg)
                if got and got[0] == "learned":
                    b = got[1]
                    saved = got[2] if len(got) > 2 else f"saved to {self.trigger_map.path}"
                    self.say(f"learned: {b.kind} {b.number} (channel {b.channel}) -> {b.action}; {saved}")
                elif got:
                    self.act(got[1], f)
        if self.follower is not None:
            self.follower.check(frame)
            self.audio.cmap = self.follower.map
        elif self.link is not None:
            self.audio.cmap = self.link.map(self.stamper)
        cmap = self.audio.cmap
        self.bar_lines.update(cmap, frame)
        if self.clock_sender is not None and cmap is not None and cmap.running:
            self.clock_sender.poll(cmap, frame)
        if self.ahead and self.current is None and self.jobs.empty() and cmap is not None and cmap.running:
            last = math.floor(cmap.tick_at_frame(frame) / cmap.ticks_per_bar)
            if self.ahead_tried < last:  # at most one try per new bar, whether it succeeds or not
                self.ahead_tried = last
                with self.lock:
                    self._start_job(frame, self.cfg.context, self.bars_out, ahead=True, quiet=True)

    # ---------------------------------------------------------------- actions
    def act(self, action: Action, frame: float | None = None) -> str:
        """Do one action; returns a one-line message (also shown in the status). Called from the control loop
        (MIDI), the OSC listener and the keys: one at a time."""
        with self.lock:
            return self._act(action, frame)

    def _act(self, action: Action, frame: float | None) -> str:
        frame = self.audio.frame if frame is None else frame
        name = action.name
        if name.startswith("learn:"):
            self.trigger_map.learn(Action(name.split(":", 1)[1]))
            return self.say(f"learn: press the note or CC for '{name.split(':', 1)[1]}'")
        if name == "continue":
            context = action.context or self.cfg.context
            bars = action.bars or self.bars_out
            if self.ahead and action.context is None and action.bars is None:
                if self.ready is not None:
                    job, clip = self.ready
                    self.ready = None
                    self.last_job = job  # what /jam/variation varies
                    clip.info["trigger_frame"] = frame
                    self.mixer.submit(clip)
                    return self.say(f"launch ready continuation {job.id} on the next bar")
                cur = self.current
                if cur is not None and cur.ahead:
                    self.launch_pending = True
                    self.last_job = cur
                    cur.trigger_frame = frame
                    return self.say(f"continuation {cur.id} is being generated: it launches when ready")
            pending = self._pending_launch()
            if pending is not None:   # one launch per bar line: N quick presses made N clips sum at one line
                return self.say(f"continuation {pending.id} is already being generated: it launches when ready")
            return self._start_job(frame, context, bars, ahead=False)
        if name == "variation":
            if self.last_job is None:
                return self.say("variation: nothing continued yet")
            j = self.last_job
            job = Job(uuid.uuid4().hex[:12], j.src, j.seconds, j.bars, j.bpm, j.seed + 1, False, frame,
                      j.source_bars)
            self.last_job = job
            self.jobs.put(job)
            return self.say(f"variation {job.id}: seed {job.seed}")
        if name == "stop":   # fade out what plays, drop what is queued or being generated
            self.mixer.stop()
            dropped = self._drop_jobs()
            return self.say("stop" + (f" (dropped {dropped} continuation(s) being generated)" if dropped else ""))
        if name == "loop":
            self.loop = not self.loop
            self.mixer.set_loop(self.loop)
            return self.say(f"loop {'on' if self.loop else 'off'}")
        if name == "bars":
            if action.bars is None:   # a note learned for "bars" without a value in the trigger file
                return self.say("bars: this trigger carries no number of bars (set `bars = N` for it in the "
                                "trigger file, or send /jam/bars N)")
            self.bars_out = float(action.bars)
            return self.say(f"bars {self.bars_out:g}")
        if name == "ahead":
            self.ahead = not self.ahead
            if not self.ahead:
                self.ready = None
            return self.say(f"generate ahead {'on' if self.ahead else 'off'}")
        if name == "quit":
            self.stop_event.set()
            return "quit"
        return self.say(f"unknown action {name}")

    def _pending_launch(self) -> "Job | None":
        """A triggered continuation (not one generated ahead) still queued or being generated, if any."""
        cur = self.current
        if cur is not None and not cur.ahead and cur.id not in self.dropped:
            return cur
        with self.jobs.mutex:
            return next((j for j in self.jobs.queue if j is not None and not j.ahead), None)

    def _drop_jobs(self) -> int:
        """Stop: forget queued jobs, cancel the one the engine is working on (its result is dropped too),
        and the continuation generated ahead. Returns how many were dropped."""
        n = 0
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:           # close() asked the worker to end: keep that
                self.jobs.put(None)
                break
            n += 1
        cur = self.current
        if cur is not None and cur.id not in self.dropped:
            self.dropped.add(cur.id)
            n += 1
            try:
                with EngineClient(self.cfg.engine_host, self.cfg.engine_port, self.cfg.token) as c:
                    c.send("/segue/cancel", [cur.id])
            except (OSError, ValueError):
                pass                  # the engine is gone: its result, if any, is dropped anyway
        self.ready, self.launch_pending = None, False
        return n

    def _start_job(self, frame: float, context: int, bars: float, ahead: bool, quiet: bool = False) -> str:
        cmap = self.audio.cmap
        if cmap is None or not cmap.running:
            return self.say("continue: the clock is not running (waiting for MIDI clock / Start)") if not quiet else ""
        try:
            job = self._cut_job(cmap, frame, context, bars, ahead)
        except ValueError as e:
            return self.say(f"continue: {e}") if not quiet else ""
        self.jobs.put(job)
        if quiet:
            return ""
        return self.say(f"continue {job.id}: bars {job.source_bars[0]}..{job.source_bars[1] - 1} for {bars:g} bars "
                        f"at {cmap.bpm:.2f} BPM")

    def _cut_job(self, cmap: ClockMap, frame: float, context: int, bars: float, ahead: bool) -> Job:
        """The job continuing the last `context` whole bars before `frame`, its source written. Raises
        ValueError when the buffer does not hold them."""
        first, start, stop = last_bars(cmap, frame, context, held_from=self.ring.start, lines=self.bar_lines)
        audio = self.ring.read(start, stop)
        rid = uuid.uuid4().hex[:12]
        src = self._write_source(rid, audio)
        n_bars = round((stop - start) / cmap.frames_per_bar)
        job = Job(rid, src, (stop - start) / self.sr, bars, cmap.bpm, self.cfg.seed, ahead, frame,
                  (first, first + n_bars), context=context)
        if not ahead:
            self.last_job = job
        return job

    def _more_context(self, job: Job) -> bool:
        """The engine found too little context in the job's bars (dsp needs a bar of whole grid units
        clear of the join, so one bar is never enough): cut the same trigger again with one more bar,
        at most two more than asked. Returns whether it was queued."""
        cmap = self.audio.cmap
        if not job.context or job.context >= min(self.cfg.context + 2, 64) or cmap is None or not cmap.running:
            return False
        with self.lock:
            try:
                more = self._cut_job(cmap, job.trigger_frame, job.context + 1, job.bars, job.ahead)
            except ValueError:
                return False
            self.jobs.put(more)
        if not job.ahead:
            self.say(f"the engine needs more than {job.context} bar(s) of context: continuing the last "
                     f"{more.context} bars instead ({more.id})")
        return True

    def _write_source(self, rid: str, audio: np.ndarray) -> Path:
        from pedalboard.io import AudioFile

        path = self.workdir / f"jam-{rid}.wav"
        fd, tmp = tempfile.mkstemp(dir=self.workdir, prefix=".jam-", suffix=".wav")
        os.close(fd)
        with AudioFile(tmp, "w", samplerate=self.sr, num_channels=audio.shape[0], bit_depth=32) as f:
            f.write(audio)
        os.replace(tmp, path)
        self._keep(path)
        return path

    def _keep(self, path: Path, keep: int = 32) -> None:
        """Remember a file the jam wrote (or asked the engine to write); delete the oldest beyond `keep`."""
        self._files.append(path)
        while len(self._files) > keep:
            old = self._files.popleft()
            try:
                old.unlink()
            except OSError:
                pass

    # ---------------------------------------------------------------- engine worker
    def _worker(self) -> None:
        client = EngineClient(self.cfg.engine_host, self.cfg.engine_port, self.cfg.token)
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                self.current = job
                try:
                    self._run_job(client, job)
                except Exception as e:   # one failed job never ends the worker: the next trigger still works
                    self.say(f"engine: {job.id} failed ({type(e).__name__}: {e}); the next trigger tries again")
                    client.close()
                    client = EngineClient(self.cfg.engine_host, self.cfg.engine_port, self.cfg.token)
                finally:
                    self.current = None
        finally:
            client.close()

    def _run_job(self, client: EngineClient, job: Job) -> None:
        from pedalboard.io import AudioFile

        opts = {"bpm": Double(job.bpm), "sig": self.cfg.sig, "sr": self.sr, "out": str(self.workdir),
                "seed": job.seed, "backend": self.cfg.backend, "prompt": self.cfg.prompt}
        args = request_args(job.id, [str(job.src), Double(job.seconds), Double(job.bars)], opts)
        t0 = time.monotonic()
        try:
            outcome = client.call("/segue/continue", args, timeout=self.cfg.timeout, answer_within=3.0)
        except (NoEngine, EngineGone) as e:
            self.say(f"engine: {e}; audio keeps running, the next trigger tries again")
            return
        if job.id in self.dropped:    # Stop came while it was generated
            self.dropped.discard(job.id)
            return
        if not outcome.ok:
            _, code, message = (outcome.final.args + ["", "", ""])[:3]
            if code == "insufficient_context" and self._more_context(job):
                return
            self.say(f"engine error {code}: {message}")
            return
        path = Path(outcome.final.args[1])
        self._keep(path)
        try:
            with AudioFile(str(path)) as f:
                audio, sr = f.read(f.frames), int(round(f.samplerate))
        except Exception as e:  # a result we cannot read is reported, the jam goes on
            self.say(f"cannot read the engine's result {path}: {e}")
            return
        gen_s = time.monotonic() - t0
        if audio.ndim != 2 or sr != self.sr:
            self.say(f"the engine's result {path} is not {self.sr} Hz audio; skipped")
            return
        clip = Clip(np.ascontiguousarray(audio.T, dtype=np.float32), id=job.id, loop=self.loop,
                    quantize=self.cfg.quantize,
                    info={"path": str(path), "trigger_frame": job.trigger_frame, "ready_frame": self.audio.frame,
                          "source_bars": list(job.source_bars), "bpm": job.bpm, "generate_s": gen_s})
        self.results_total += 1
        self.results.append({"id": job.id, "path": str(path), "frames": len(clip.audio), "generate_s": gen_s,
                             "ahead": job.ahead})
        with self.lock:
            self._hand_over(job, clip, gen_s)

    def _hand_over(self, job: Job, clip: Clip, gen_s: float) -> None:
        if job.ahead and self.launch_pending:
            self.launch_pending = False
            clip.info["trigger_frame"] = job.trigger_frame  # the trigger came while it was generated
            self.mixer.submit(clip)
            self.say(f"ready {job.id} after {gen_s:.2f} s: launches on the next bar line")
        elif job.ahead and self.ahead:
            self.ready = (job, clip)
        elif not job.ahead:
            self.mixer.submit(clip)
            self.say(f"ready {job.id} after {gen_s:.2f} s: launches on the next "
                     f"{'bar' if self.cfg.quantize == 1 else f'{self.cfg.quantize}-bar'} line")

    def _check_engine(self) -> None:
        with EngineClient(self.cfg.engine_host, self.cfg.engine_port, self.cfg.token) as c:
            try:
                out = c.call("/segue/ping", ["jam-ping"], answer_within=2.0)
                self.say(f"engine: {out.final.args[2] if len(out.final.args) > 2 else 'ready'} at "
                         f"{self.cfg.engine_host}:{self.cfg.engine_port}")
            except NoEngine as e:
                self.say(f"engine: {e}; the jam keeps running, triggers will fail until it is up")

    # ---------------------------------------------------------------- OSC
    def _osc_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            try:
                messages = decode(data)
            except ProtocolError:
                self._reply(addr, "/jam/error", ["bad_packet", "datagram is not OSC"])
                continue
            for address, args in messages:
                self._osc_message(addr, address, args)

    def _osc_message(self, addr, address: str, args: list) -> None:
        if address == "/jam/status":
            self._reply(addr, "/jam/status", [json.dumps(self.status())])
            return
        try:
            action = osc_action(address, args)
        except ValueError as e:
            self._reply(addr, "/jam/error", ["bad_request", str(e)])
            return
        self._reply(addr, "/jam/ok", [action.name, self.act(action)])

    def _reply(self, addr, address: str, args: list) -> None:
        try:
            self.sock.sendto(encode(address, args), addr)
        except OSError:
            pass

    # ---------------------------------------------------------------- status
    def say(self, text: str) -> str:
        self.messages.append(text)
        if text:
            prefix = "\r\x1b[K" if self.cfg.status_line else ""
            print(prefix + text, file=self.out, flush=True)
        return text

    def status(self) -> dict:
        cmap: ClockMap | None = self.audio.cmap
        frame = self.audio.frame
        bar, beat = cmap.bar_beat(frame) if cmap is not None else (None, None)
        mixer = self.mixer
        held = (self.ring.end - self.ring.start) / self.sr
        return {
            "frame": frame, "sr": self.sr,
            "clock": {"source": self.cfg.clock, "bpm": cmap.bpm if cmap else None,
                      "running": bool(cmap and cmap.running), "state": cmap.state if cmap else "waiting"},
            "bar": bar, "beat": beat, "level_db": round(self.audio.level_db, 1),
            "buffer_seconds": held,
            "buffer_bars": held / (cmap.frames_per_bar / self.sr) if cmap else None,
            "queued": len(mixer.queued) + len(mixer.inbox) + self.jobs.qsize(),
            "generating": self.current is not None or not self.jobs.empty(),
            "ready": self.ready is not None, "playing": len(mixer.voices),
            "loop": self.loop, "ahead": self.ahead, "bars": self.bars_out,
            "xruns": self.audio.xruns, "launched": list(mixer.launched), "results": list(self.results),
            "results_total": self.results_total,
            "messages": list(self.messages)[-5:],
        }

    def status_text(self) -> str:
        s = self.status()
        c = s["clock"]
        tempo = f"{c['bpm']:6.2f} BPM {c['source']}" if c["bpm"] else f"-- BPM {c['source']}"
        pos = f"{s['bar'] + 1}:{int(s['beat']) + 1}" if s["bar"] is not None else "-:-"
        fill = f"{s['buffer_bars']:.1f} bars" if s["buffer_bars"] is not None else f"{s['buffer_seconds']:.0f} s"
        return (f"{tempo} {c['state']:<7} {pos:>6} | in {s['level_db']:6.1f} dB | buf {fill} | "
                f"queued {s['queued']} ready {int(s['ready'])} playing {s['playing']} | xruns {s['xruns']}")


def _default_workdir() -> Path:
    """A folder under the engine's default allowed root, so the engine may write its results there."""
    from segue.engine.paths import default_render_dir

    return default_render_dir() / "jam"
