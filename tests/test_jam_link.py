"""Ableton Link, when the optional extra is installed: two peers in a private network namespace holding only
loopback (never the default namespace: Link multicasts discovery on every interface). The jam's LinkClock
follows the other peer's tempo (also after a change) and its bar phase."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _why_not() -> str | None:
    try:
        import link  # noqa: F401
    except ImportError:
        return "Link extra not installed (pip install LinkPython-extern; GPL, optional)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip not available for a private network namespace"
    probe = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up && ip link set lo multicast on"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.strip()}"
    return None


WHY = _why_not()


@pytest.mark.skipif(WHY is not None, reason=f"Link test skipped: {WHY}")
def test_link_tempo_and_phase_followed_between_two_peers_in_a_private_namespace():
    # lo carries no multicast by default; Link's discovery needs it.
    cmd = f"ip link set lo up && ip link set lo multicast on && exec {sys.executable} {HERE / 'live' / 'link_peers.py'}"
    run = subprocess.run(["unshare", "--net", "sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["peers"] >= 1
    assert abs(out["bpm1"] - 133.0) < 0.01 and abs(out["bpm2"] - 141.0) < 0.01
    assert abs(out["phase_ms1"]) < 1.0 and abs(out["phase_ms2"]) < 1.0, out
