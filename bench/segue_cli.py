"""What the speed benchmarks share to drive a real engine through the `segue` command-line client.

    port = free_port()                                   # a free UDP port on 127.0.0.1
    seconds = timed(port, "inpaint", src, "10.0", "10.5", "--bpm", "120")   # wall time, client start included
    info = status_detail(port)                           # `segue status --detail` as a dict
    loadavg()                                            # ['0.49', '1.43', '1.82']: record it beside the figures
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEGUE = [sys.executable, "-m", "segue.engine.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(port: int, *args, timeout: float = 1200) -> float:
    """Run `segue ARGS --port PORT --quiet` to its end -> seconds of wall time. Raises RuntimeError."""
    t0 = time.perf_counter()
    r = subprocess.run(SEGUE + list(args) + ["--port", str(port), "--quiet", "--timeout", str(timeout)],
                       capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"segue {args}: {r.stdout} {r.stderr}")
    return dt


def status_detail(port: int) -> dict:
    """The engine's `segue status --detail` JSON ({"raw": text} when it printed none)."""
    r = subprocess.run(SEGUE + ["status", "--detail", "--port", str(port)], capture_output=True, text=True, cwd=ROOT)
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    i = r.stdout.find("{")
    return json.loads(r.stdout[i:]) if i >= 0 else {"raw": r.stdout}


def loadavg() -> list[str]:
    """The 1, 5 and 15 minute load averages (a shared machine's noise goes with the numbers)."""
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return ["?"]
