"""Engine speed and memory on the dsp backend, end to end through OSC on 127.0.0.1.

    .venv/bin/python bench/bench_engine.py [--rounds 50]

Measures, against a real `segue serve` process:
- /segue/ping round trip (send -> /segue/pong received), p50 / p90;
- a 1-bar inpaint (2 s at 120 BPM) in a 30 s, 48 kHz stereo source, send ->
  /segue/done received, p50 / p90, first request on the file separately
  (decode + analysis) from repeated edits at varying positions;
- the engine's resident memory (VmRSS, and VmHWM the peak) after the run.
Targets (issue 2): inpaint p50 < 100 ms, ping p50 < 2 ms, RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bridge.client import request_args  # noqa: E402
from conftest import groove, start_engine, stop_engine, write_wav  # noqa: E402


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        eng = start_engine(tmp, "--log-level", "warning")
        try:
            src = write_wav(tmp / "allowed" / "src30.wav", groove(30.0, 48000, seed=3), 48000)
            with eng.client() as c:
                pings = []
                for i in range(args.rounds * 4):
                    t0 = time.perf_counter()
                    out = c.call("/segue/ping", [f"p{i}"])
                    pings.append((time.perf_counter() - t0) * 1000)
                    assert out.final.address == "/segue/pong"
                times = []
                first = None
                for i in range(args.rounds + 1):
                    start = 2.0 + (i * 0.5) % 24.0   # move the region: repeated edits of one file
                    t0 = time.perf_counter()
                    out = c.call("/segue/inpaint", request_args(f"i{i}", [str(src), start, start + 2.0],
                                                                {"bpm": 120.0, "sig": "4/4"}))
                    dt = (time.perf_counter() - t0) * 1000
                    assert out.final.address == "/segue/done", out.final.args
                    if first is None:
                        first = dt
                    else:
                        times.append(dt)
            rss, hwm = rss_mb(eng.proc.pid)
        finally:
            stop_engine(eng)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print("| measure | p50 | p90 | target |")
    print("|---|---|---|---|")
    print(f"| /segue/ping round trip | {statistics.median(pings):.2f} ms | {pct(pings, 0.9):.2f} ms | p50 < 2 ms |")
    print(f"| 1-bar inpaint, 30 s 48 kHz stereo, first request on the file | {first:.1f} ms | - | - |")
    print(f"| 1-bar inpaint, repeated edits ({len(times)}) | {statistics.median(times):.1f} ms | "
          f"{pct(times, 0.9):.1f} ms | p50 < 100 ms |")
    print(f"| engine resident memory after the run (VmRSS / peak VmHWM) | {rss:.0f} MB | {hwm:.0f} MB | < 300 MB |")


if __name__ == "__main__":
    main()
