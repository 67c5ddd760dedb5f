"""Engine resident memory with the dsp backend on a 10-minute source without bpm (issue 8, fault 5).

    .venv/bin/python bench/bench_dsp_memory.py [--minutes 10] [--sr 44100] [--channels 2]

A real `segue serve --backend dsp` process on 127.0.0.1; a 16-bit WAV of `minutes` of
conftest.groove (a drum-and-bass pattern at 120 BPM) is inpainted without `bpm` (so the tempo is
estimated) at the start, middle and end (2 s regions), then over a 60 s region (the tempo window is
then 60 + 2 x 30 s). After each request: the engine's VmRSS and its peak VmHWM (/proc/PID/status),
and the request's wall time (send -> /segue/done). Target: VmHWM < 300 MB.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from segue.bridge.client import request_args  # noqa: E402
from conftest import groove, start_engine, stop_engine  # noqa: E402


def mem_mb(pid: int) -> tuple[float, float]:
    f = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
    return int(f["VmRSS"].split()[0]) / 1024, int(f["VmHWM"].split()[0]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sr", type=int, default=44100)
    ap.add_argument("--channels", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        eng = start_engine(tmp, "--log-level", "warning")
        try:
            src = tmp / "allowed" / "ten_minutes.wav"
            bar = groove(8.0, a.sr, channels=a.channels)             # 4 bars, tiled: same audio, less bench memory
            reps = int(np.ceil(a.minutes * 60 / 8.0))
            with sf.SoundFile(str(src), "w", a.sr, a.channels, subtype="PCM_16") as f:
                for _ in range(reps):
                    f.write(bar.T)
            seconds = sf.info(str(src)).duration
            rss0, hwm0 = mem_mb(eng.proc.pid)
            print(f"# dsp engine memory, {seconds / 60:.1f} min {a.sr} Hz {a.channels} ch 16-bit WAV, no bpm\n")
            print(f"{platform.machine()}, {platform.python_version()}, {time.strftime('%Y-%m-%d')}\n")
            print("| request | wall s | VmRSS MB | VmHWM MB |\n|---|---|---|---|")
            print(f"| (engine idle, before) | - | {rss0:.0f} | {hwm0:.0f} |")
            cases = [("inpaint 2 s at 30 s", 30.0, 32.0), ("inpaint 2 s at the middle", seconds / 2, seconds / 2 + 2),
                     ("inpaint 2 s near the end", seconds - 10, seconds - 8),
                     ("inpaint 60 s in the middle", seconds / 2 - 30, seconds / 2 + 30)]
            for i, (name, s, e) in enumerate(cases):
                t0 = time.perf_counter()
                with eng.client() as c:
                    out = c.call("/segue/inpaint", request_args(f"m{i}", [str(src), float(s), float(e)], {}),
                                 timeout=600)
                dt = time.perf_counter() - t0
                ok = out.final.address == "/segue/done"
                rss, hwm = mem_mb(eng.proc.pid)
                print(f"| {name}{'' if ok else ' (error: ' + str(out.final.args[1:3]) + ')'} | {dt:.2f} | "
                      f"{rss:.0f} | {hwm:.0f} |")
            print(f"\nSource audio as float32: {seconds * a.sr * a.channels * 4 / 2**20:.0f} MiB. Target: VmHWM < 300 MB.")
        finally:
            stop_engine(eng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
