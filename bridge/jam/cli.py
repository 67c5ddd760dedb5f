"""`segue jam`: the command line. engine/cli.py calls `add_jam_parser(subparsers)`."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from pathlib import Path

# the same argparse types as every other subcommand: bad numbers are usage errors (exit 2), and
# $SEGUE_PORT sets the engine port here too, as README.md says it does for every command
from ...engine.cli import DEFAULT_PORT, _number, listen_port, port_number


def add_jam_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "jam", help="play live: follow the band's clock, continue what was just played, launch it on the bar",
        description="Follow MIDI clock, Ableton Link or a fixed tempo; record an audio input; on a trigger ask the "
                    "engine (segue serve) to continue the last bars and play the result from a coming bar line. "
                    "See docs/live.md.")
    g = p.add_argument_group("clock")
    g.add_argument("--clock", choices=["midi", "link", "fixed"],
                   help="tempo source (default: fixed when --bpm is given, else midi)")
    g.add_argument("--bpm", type=float, help="fixed tempo in quarter notes per minute (or Link's starting tempo)")
    g.add_argument("--sig", default="4/4", help="time signature N/D (MIDI clock has none), default 4/4")
    g.add_argument("--clock-out", metavar="PORT",
                   help="send MIDI clock (fixed tempo or Link) to PORT, or 'virtual' for a port others connect to")
    g = p.add_argument_group("MIDI")
    g.add_argument("--midi-in", metavar="PORT",
                   help="MIDI input for clock and triggers (name or part of it); default: a virtual port segue-jam:in")
    g.add_argument("--trigger-in", metavar="PORT", help="a second MIDI input for triggers only")
    g.add_argument("--midi-api", help="python-rtmidi API: UNIX_JACK, LINUX_ALSA, MACOSX_CORE, WINDOWS_MM "
                                      "(default: env MIDO_BACKEND, else mido's default)")
    g.add_argument("--triggers", type=Path, metavar="FILE", help="trigger map (TOML); learn mode writes it")
    g.add_argument("--learn", metavar="ACTION", help="map the next note/CC pressed to ACTION, save it to --triggers")
    g = p.add_argument_group("audio")
    g.add_argument("--audio-api", help="PortAudio host API, e.g. jack, alsa, 'core audio', wasapi")
    g.add_argument("--device-in", help="input device (index or name)")
    g.add_argument("--device-out", help="output device (index or name)")
    g.add_argument("--in-channels", default="1,2", help="input channels to record, from 1 (default 1,2)")
    g.add_argument("--out-channels", default="1,2", help="output channels to play on, from 1 (default 1,2)")
    g.add_argument("--samplerate", type=_number(8000, 384000, "--samplerate", integer=True), help="Hz (default: the device's; under JACK the server's)")
    g.add_argument("--blocksize", type=_number(0, 65536, "--blocksize", integer=True), default=0, help="frames per callback, 0 = the host's period (default)")
    g.add_argument("--buffer-seconds", type=_number(1, 3600, "--buffer-seconds"), default=90.0, help="input history kept (default 90 s)")
    g.add_argument("--fade-ms", type=_number(0, 1000, "--fade-ms"), default=2.0, help="declick fade length (default 2 ms)")
    g.add_argument("--offset-ms", type=float, default=0.0,
                   help="start clips this much before the bar line, to make up for the output latency")
    g = p.add_argument_group("what to play")
    g.add_argument("--context", type=int, default=4, help="bars of input to continue (default 4)")
    g.add_argument("--bars", type=float, default=4.0, help="bars to generate (default 4)")
    g.add_argument("--quantize", type=int, choices=[1, 2, 4], default=1, help="launch on a multiple of this many bars")
    g.add_argument("--loop", action="store_true", help="loop each result until the next trigger")
    g.add_argument("--ahead", action="store_true", help="generate ahead: keep a continuation ready")
    g = p.add_argument_group("engine")
    g.add_argument("--host", default="127.0.0.1", help="engine address (default 127.0.0.1)")
    g.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                   help="engine port ($SEGUE_PORT sets the default, else 9137)")
    g.add_argument("--token", help="the engine's --token, if it has one")
    g.add_argument("--backend", help="engine backend per request (default: the engine's)")
    g.add_argument("--prompt", help="text prompt (neural backends)")
    g.add_argument("--seed", type=_number(0, 2147483647, "--seed", integer=True), default=0)
    g.add_argument("--timeout", type=_number(0, None, "--timeout", above=True), default=60.0, help="seconds to wait for one continuation (default 60)")
    g.add_argument("--workdir", type=Path, help="folder for the bars sent to the engine and its results; must be "
                                                 "an engine-allowed folder (default: <engine renders>/jam)")
    p.add_argument("--osc-port", type=listen_port, default=9138, help="jam's own OSC port on 127.0.0.1 (default 9138)")
    p.add_argument("--status", choices=["auto", "on", "off"], default="auto",
                   help="the terminal status line (auto: on a terminal)")
    p.set_defaults(func=cmd_jam)
    return p


def _config(args):
    from .app import JamConfig
    from .audio import parse_channels
    from .clock import parse_sig
    from .triggers import ACTIONS

    clock = args.clock or ("fixed" if args.bpm else "midi")
    if clock == "fixed" and not args.bpm:
        raise ValueError("--clock fixed needs --bpm")
    if args.bpm is not None and not 20 <= args.bpm <= 400:
        raise ValueError(f"--bpm {args.bpm:g} is outside 20-400")
    parse_sig(args.sig)
    if not 1 <= args.context <= 64 or not 0 < args.bars <= 64:
        raise ValueError("--context must be 1-64 bars and --bars in (0, 64]")
    if not math.isfinite(args.offset_ms) or abs(args.offset_ms) > 1000:
        raise ValueError(f"--offset-ms {args.offset_ms:g} must be a number of milliseconds within +-1000")
    from ..net import is_loopback_host
    if not is_loopback_host(args.host) and not args.token:
        raise ValueError(f"--host {args.host} is not loopback: the engine then needs --token (and so does the jam)")
    if args.bpm is not None and clock != "fixed":
        print(f"segue jam: note: --bpm {args.bpm:g} is only a first guess; the tempo follows the {clock} clock",
              file=sys.stderr)
    if args.learn and args.learn not in ACTIONS:
        raise ValueError(f"--learn {args.learn!r} is not one of {', '.join(ACTIONS)}")
    if args.learn and not args.triggers:
        raise ValueError("--learn needs --triggers FILE to save the mapping in")
    if args.workdir is not None and not args.workdir.is_absolute():
        args.workdir = args.workdir.resolve()
    api = args.midi_api
    if api is None and os.environ.get("MIDO_BACKEND", "").count("/"):
        api = os.environ["MIDO_BACKEND"].split("/", 1)[1]
    status = args.status == "on" or (args.status == "auto" and sys.stderr.isatty())
    return JamConfig(engine_host=args.host, engine_port=args.port, token=args.token, clock=clock, bpm=args.bpm,
                     sig=args.sig, midi_in=args.midi_in, trigger_in=args.trigger_in, midi_api=api,
                     clock_out=args.clock_out, device_in=args.device_in, device_out=args.device_out,
                     in_channels=parse_channels(args.in_channels, "input"),
                     out_channels=parse_channels(args.out_channels, "output"), samplerate=args.samplerate,
                     blocksize=args.blocksize, audio_api=args.audio_api, context=args.context, bars=args.bars,
                     quantize=args.quantize, loop=args.loop, ahead=args.ahead, fade_ms=args.fade_ms,
                     offset_ms=args.offset_ms, buffer_seconds=args.buffer_seconds, workdir=args.workdir,
                     triggers=args.triggers, osc_port=args.osc_port, backend=args.backend, prompt=args.prompt,
                     seed=args.seed, timeout=args.timeout, status_line=status, learn=args.learn)


def cmd_jam(args) -> int:
    try:
        cfg = _config(args)
    except ValueError as e:
        print(f"segue jam: {e}", file=sys.stderr)
        return 2
    try:
        import mido  # noqa: F401
        import rtmidi  # noqa: F401
    except ImportError as e:
        print(f"segue jam needs the live extra ({e.name} is missing): from the repository root run "
              f".venv/bin/pip install -e '.[live]' (on Linux also: apt install libportaudio2)", file=sys.stderr)
        return 1
    from .app import Jam

    # The audio callback shares the interpreter with the control, OSC and engine-client threads (no
    # generation: that runs in the engine). A 1 ms switch interval keeps any of them from making the
    # callback wait the default 5 ms for the GIL (live.md: 852 -> 1 xruns with a busy thread).
    sys.setswitchinterval(0.001)
    jam = Jam(cfg)
    try:
        jam.open()
    except (RuntimeError, ValueError, ImportError, OSError) as e:
        print(f"segue jam: {e}", file=sys.stderr)
        jam.close()
        return 1

    def stop(*_):
        jam.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    keys = _Keys(jam) if sys.stdin.isatty() else None
    try:
        jam.run()
    finally:
        if keys:
            keys.restore()
        jam.close()
        if cfg.status_line:
            print(file=sys.stderr)
    if jam.audio_lost:   # PortAudio's own exit handler would wait forever on the server that went away
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    return 0


class _Keys:
    """Terminal keys in cbreak mode (restored at exit): one key, one action; 'm' then a key learns it."""

    def __init__(self, jam):
        import termios
        import tty

        self.jam = jam
        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        threading.Thread(target=self._loop, name="jam-keys", daemon=True).start()

    def _loop(self) -> None:
        from .triggers import Action, key_action

        learn = False
        while not self.jam.stop_event.is_set():
            ch = sys.stdin.read(1)
            if not ch:
                return
            if ch == "m":
                learn = True
                self.jam.say("learn: now press the key of the action to map (c v s l a)")
                continue
            act = key_action(ch)
            if act is None:
                continue
            if learn:
                learn = False
                if act.name in ("quit", "bars"):
                    continue
                self.jam.act(Action("learn:" + act.name))
            else:
                self.jam.act(act)

    def restore(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
