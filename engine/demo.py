"""`segue demo`: the README's first command. Start an engine on `dsp`, render a short
loop on the spot, ask the engine over OSC to continue it by 4 bars, and show the result."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .audio_io import write_wav_atomic
from .errors import SegueError
from .paths import default_render_dir
from .timeline import Grid, bars_to_samples

BPM, SR, BARS = 120.0, 44100, 4


def render_loop(seconds: float = 8.0, sr: int = SR, bpm: float = BPM) -> np.ndarray:
    """A two-bar drum and bass groove, repeated: kick, snare, hats and a moving bass line."""
    rng = np.random.default_rng(7)
    n = int(seconds * sr)
    out = np.zeros((2, n), dtype=np.float64)
    beat = 60.0 / bpm

    def hit(t0: float, sig: np.ndarray, pan: float = 0.0) -> None:
        s = int(round(t0 * sr))
        m = min(len(sig), n - s)
        if m > 0:
            out[0, s:s + m] += sig[:m] * (1 - pan)
            out[1, s:s + m] += sig[:m] * (1 + pan)

    tt = np.arange(int(0.4 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 8)
    snare = rng.standard_normal(len(tt)) * np.exp(-tt * 18) * 0.5 + np.sin(2 * np.pi * 190 * tt) * np.exp(-tt * 20) * 0.3
    hat = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / sr * 80) * 0.15
    bass_notes = [55.0, 55.0, 65.4, 49.0, 55.0, 73.4, 65.4, 49.0]
    for k in range(int(seconds / beat)):
        t0 = k * beat
        hit(t0, kick if k % 2 == 0 else snare)
        hit(t0 + beat / 2, hat, pan=0.3)
        hit(t0, hat, pan=-0.3)
        f = bass_notes[k % len(bass_notes)]
        bt = np.arange(int(beat * sr)) / sr
        hit(t0, 0.25 * np.sin(2 * np.pi * f * bt) * np.minimum(1, bt * 200) * np.exp(-bt * 2))
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_loop_path() -> Path:
    """Where the demo loop lives: `demo/demo-loop-120bpm.wav` beside the renders folder
    (Linux: ~/.local/share/segue/demo/, macOS: ~/Library/Application Support/Segue/demo/)."""
    return default_render_dir().parent / "demo" / "demo-loop-120bpm.wav"


def _why_not(folder: Path, e: OSError) -> str:
    """Why `folder` could not be made, in words: the ancestor that is a file, or the system's reason."""
    if isinstance(e, (NotADirectoryError, FileExistsError)):
        for p in (folder, *folder.parents):
            if p.exists() or p.is_symlink():
                if not p.is_dir():
                    return f"{p} is a file, not a folder"
                break
    return e.strerror or str(e)


def _data_hint() -> str:
    xdg = os.environ.get("XDG_DATA_HOME")
    if sys.platform not in ("win32", "darwin") and xdg:
        return f"XDG_DATA_HOME is {xdg}: set it to a folder you can write, or unset it to use ~/.local/share"
    return "move what is in the way, or make that folder writable"


def write_demo_loop(loop: np.ndarray | None = None) -> Path:
    """(Re)write the demo loop: 8 s, stereo, 44.1 kHz, 120 BPM, 4/4, bar lines at 0, 2, 4, 6 s.

    Returns its path (see demo_loop_path). Raises SegueError("write_failed") naming the folder and
    why when the folder cannot be made (e.g. XDG_DATA_HOME names a file) or the file cannot be
    written; the CLI prints that as one line and exits 1.
    """
    src = demo_loop_path()
    try:
        src.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:   # was a NotADirectoryError traceback with XDG_DATA_HOME=/etc/passwd
        raise SegueError("write_failed", f"cannot create the demo folder {src.parent}: {_why_not(src.parent, e)}; "
                         f"{_data_hint()}") from e
    try:
        if src.exists():
            src.unlink()
    except OSError as e:
        raise SegueError("write_failed", f"cannot replace the demo loop {src}: {e.strerror or e}") from e
    write_wav_atomic(src.parent, src.name, render_loop() if loop is None else loop, SR)
    return src


def segue_program() -> Path | None:
    """The installed `segue` program this Python runs from (a venv's bin/ or Scripts/), if any."""
    here = Path(sys.executable).parent
    for name in ("segue", "segue.exe"):
        if (here / name).exists():
            return here / name
    found = shutil.which("segue")
    return Path(found) if found else None


def next_steps(src: Path) -> str:
    """The closing lines: where `segue` is, and the exact commands to try next."""
    loop = shlex.quote(str(src))
    exe = segue_program()
    if exe is None:
        where = ["`segue` is not installed as a program here: run `pip install -e .` in the repository,",
                 "or use `python -m segue.engine.cli` from the repository root wherever these lines say `segue`."]
    else:
        on_path = shutil.which("segue") == str(exe)
        where = [f"The `segue` program is {exe}."]
        if not on_path:
            where.append(f'Put it on your PATH for this shell: export PATH="{exe.parent}:$PATH"')
    return "\n".join(["", "Next steps:", *("  " + w for w in where),
                      "  In one terminal start the engine (leave it running):",
                      "    segue serve",
                      f"  In another, work on the demo loop ({src.name}: 8 s, 120 BPM, 4/4):",
                      f"    segue inpaint {loop} 4.0 6.0 --bpm 120",
                      f"    segue continue {loop} 8.0 4 --bpm 120 --variations 2",
                      "    segue renders",
                      "  README.md (\"Try it by hand\") and docs/reaper.md / docs/ableton.md go on from there."])


def run_demo(port: int = 0) -> int:
    from segue.bridge.client import EngineClient, NoEngine, request_args

    port = port or _free_port()
    loop = render_loop()
    src = write_demo_loop(loop)
    print(f"rendered a 2-bar groove, repeated to {loop.shape[1] / SR:.1f} s: {src}")

    engine = subprocess.Popen([sys.executable, "-m", "segue.engine.cli", "serve", "--port", str(port),
                               "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    try:
        ready = engine.stdout.readline().strip()
        if not ready:   # it exited (its reason is on stderr): never fall through to whatever holds the port
            engine.wait(timeout=10)
            print(f"the demo's engine did not start on 127.0.0.1:{port} (see the line above); if another program "
                  "holds that port, run `segue demo` without --port", file=sys.stderr)
            return 1
        print(ready)
        with EngineClient("127.0.0.1", port) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    c.call("/segue/ping", ["demo-ping"], answer_within=1.0)
                    break
                except NoEngine:
                    if time.monotonic() > deadline or engine.poll() is not None:
                        print("the engine did not start", file=sys.stderr)
                        return 1
            at = loop.shape[1] / SR
            t0 = time.monotonic()
            outcome = c.call("/segue/continue", request_args("demo", [str(src), at, float(BARS)],
                                                             {"bpm": BPM, "sig": "4/4", "variations": 2}),
                             on_event=lambda r: print(f"  {r.address} {r.args[1:]}"))
            dt = time.monotonic() - t0
        if outcome.final.address != "/segue/done":
            print(f"error: {outcome.final.args}", file=sys.stderr)
            return 1
        from pedalboard.io import AudioFile

        paths = [outcome.final.args[1]] + list(outcome.final.args[4:])
        expect = bars_to_samples(BARS, Grid(BPM), SR)
        for p in paths:
            with AudioFile(p) as f:
                y = f.read(f.frames)
            seam = abs(float(y[0, 0]) - float(loop[0, -1]))
            print(f"continued {BARS} bars at {BPM:g} BPM in {dt * 1000:.0f} ms: {p}\n"
                  f"  {y.shape[1]} samples at {SR} Hz (expected {expect}), {y.shape[0]} channels, "
                  f"step at the join {seam:.4f}")
        print(next_steps(src))
        return 0
    finally:
        engine.terminate()
        engine.wait(timeout=10)
