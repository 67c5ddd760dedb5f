"""Engine speed and memory on the dsp backend, end to end through OSC on 127.0.0.1.

    .venv/bin/python bench/bench_engine.py [--rounds 50] [--compare OTHER_CHECKOUT]

Measures, against a real `segue serve` process:
- /segue/ping round trip (send -> /segue/pong received), p50 / p90;
- a 1-bar inpaint (2 s at 120 BPM) in a 30 s, 48 kHz stereo source, send ->
  /segue/done received, p50 / p90, first request on the file separately
  (decode + analysis) from repeated edits at varying positions;
- the engine's resident memory (VmRSS, and VmHWM the peak) after the run.
Targets (issue 2): inpaint p50 < 100 ms, ping p50 < 2 ms, RSS < 300 MB.

`--compare DIR` starts a second engine from another checkout (e.g. `git
worktree add /tmp/old <commit>`) and alternates the two request by request in
the same run, so machine noise hits both alike; it prints both and the ratios.
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

from segue.bridge.client import EngineClient, NoEngine, request_args  # noqa: E402
from conftest import Engine, groove, stop_engine, write_wav  # noqa: E402


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def launch(root: Path, tmp: Path) -> Engine:
    """`segue serve` from the checkout at `root` (its own code), on a free port, dsp backend."""
    import socket
    import subprocess

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    allowed = tmp / "allowed"
    allowed.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "xdg"), PYTHONPATH=str(root))
    log = tmp / "engine.log"
    proc = subprocess.Popen([sys.executable, "-m", "segue.engine.cli", "serve", "--port", str(port), "--allow-dir",
                             str(allowed), "--log-level", "warning"], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env=env, cwd=str(root))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"engine in {root} exited: {log.read_text()}")
        with EngineClient("127.0.0.1", port) as c:
            try:
                c.call("/segue/ping", ["startup"], answer_within=0.5)
                return Engine(proc, port, allowed, log)
            except NoEngine:
                continue
    proc.kill()
    raise RuntimeError("engine did not answer within 60 s")


def measure(engines: dict, src: Path, rounds: int) -> dict:
    """Alternate the engines request by request; per engine: ping ms, first and repeated inpaint ms."""
    res = {name: {"ping": [], "inpaint": [], "first": None} for name in engines}
    clients = {name: e.client() for name, e in engines.items()}
    try:
        for i in range(rounds * 4):
            for name, c in clients.items():
                t0 = time.perf_counter()
                out = c.call("/segue/ping", [f"p{i}"])
                res[name]["ping"].append((time.perf_counter() - t0) * 1000)
                assert out.final.address == "/segue/pong"
        for i in range(rounds + 1):
            start = 2.0 + (i * 0.5) % 24.0   # move the region: repeated edits of one file
            for name, c in clients.items():
                t0 = time.perf_counter()
                out = c.call("/segue/inpaint", request_args(f"i{i}", [str(src), start, start + 2.0],
                                                            {"bpm": 120.0, "sig": "4/4"}))
                dt = (time.perf_counter() - t0) * 1000
                assert out.final.address == "/segue/done", out.final.args
                if res[name]["first"] is None:
                    res[name]["first"] = dt
                else:
                    res[name]["inpaint"].append(dt)
    finally:
        for c in clients.values():
            c.close()
    for name, e in engines.items():
        res[name]["rss"], res[name]["hwm"] = rss_mb(e.proc.pid)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--compare", help="another checkout to measure side by side (its own segue serve)")
    args = ap.parse_args()
    roots = {"this": ROOT}
    if args.compare:
        roots["compare"] = Path(args.compare).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        engines = {}
        try:
            for name, root in roots.items():
                engines[name] = launch(root, tmp / name)
            src = write_wav(tmp / "this" / "allowed" / "src30.wav", groove(30.0, 48000, seed=3), 48000)
            res = measure(engines, src, args.rounds)
        finally:
            for e in engines.values():
                stop_engine(e)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    names = list(res)
    head = " | ".join(f"{n} p50 | {n} p90" for n in names)
    ratio = " | ratio p50 this/compare" if "compare" in res else ""
    print(f"| measure | {head}{ratio} | target |")
    print("|---" * (1 + 2 * len(names) + (1 if ratio else 0) + 1) + "|")

    def row(label, key, unit, target, fmt):
        cells = []
        for n in names:
            xs = res[n][key]
            cells.append(f"{fmt.format(statistics.median(xs))} {unit} | {fmt.format(pct(xs, 0.9))} {unit}")
        r = (f" | {statistics.median(res['this'][key]) / statistics.median(res['compare'][key]):.2f}"
             if ratio else "")
        print(f"| {label} | {' | '.join(cells)}{r} | {target} |")

    row("/segue/ping round trip", "ping", "ms", "p50 < 2 ms", "{:.2f}")
    row(f"1-bar inpaint, 30 s 48 kHz stereo, repeated edits ({len(res['this']['inpaint'])})", "inpaint", "ms",
        "p50 < 100 ms", "{:.1f}")
    firsts = " | ".join(f"{res[n]['first']:.1f} ms | -" for n in names)
    print(f"| 1-bar inpaint, first request on the file | {firsts}{' | -' if ratio else ''} | - |")
    mem = " | ".join(f"{res[n]['rss']:.0f} MB | {res[n]['hwm']:.0f} MB (peak)" for n in names)
    print(f"| engine resident memory after the run (VmRSS / VmHWM) | {mem}{' | -' if ratio else ''} | < 300 MB |")


if __name__ == "__main__":
    main()
