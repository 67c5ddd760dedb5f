"""How long a REAPER action takes from running the script to the result on the timeline.

Runs "Segue - Inpaint time selection" and "Segue - Continue item" under the
stand-in REAPER (tests/reaper) against a real `segue serve --backend dsp` on
127.0.0.1 and splits the time into: ping (client start + engine answer),
request (client start + engine work + status file), landing (defer poll +
timeline edits). Prints medians over N runs.

    .venv/bin/python bench/reaper_latency.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "reaper"), str(ROOT / "tests")]

import reaper_harness as h  # noqa: E402
from test_reaper_e2e import (BAR, BPM, DEN, NUM, SRC_SR, drum_loop, free_port, project,  # noqa: E402
                             segue_program, write_audio)


def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="segue-reaper-bench-"))
    exe, port, out = segue_program(tmp), free_port(), tmp / "renders"
    out.mkdir()
    proc = subprocess.Popen([str(exe), "serve", "--backend", "dsp", "--port", str(port), "--allow-dir", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while subprocess.run([str(exe), "ping", "--port", str(port)], capture_output=True).returncode != 0:
            time.sleep(0.2)
        loop = write_audio(tmp / "loop.wav", drum_loop(12.0, SRC_SR, BPM, NUM, DEN), SRC_SR)
        ext = {"exe": str(exe), "port": str(port), "out": str(out), "seed": "1"}
        for action, sel, inputs in (("inpaint", (6.0, 7.0), []), ("continue", (0.0, 0.0), [{"ok": True, "values": "2"}])):
            rows = []
            for k in range(n):
                d = tmp / f"{action}{k}"
                d.mkdir()
                rep = h.run_case(d, action, project(loop, sel), ext, inputs=inputs, max_seconds=120)
                assert rep["errors"] == [] and rep["messages"] == [] and len(rep["undo"]) == 1, rep
                ping_t, req_t = rep["exec"][0]["t"], rep["exec"][1]["t"]
                land_t = next(op["t"] for op in rep["ops"] if op["in_undo"])
                rows.append((req_t - ping_t, land_t - req_t, land_t))
            med = [statistics.median(c) for c in zip(*rows)]
            print(f"{action:8s} n={n}: ping {med[0] * 1000:6.0f} ms, request to landing {med[1] * 1000:6.0f} ms, "
                  f"script start to landing {med[2] * 1000:6.0f} ms (median; 1 s selection / 2 bars of 7/8 = "
                  f"{2 * BAR:.1f} s at 48 kHz)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
