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


@pytest.mark.skipif(WHY is not None, reason=f"Link test skipped: {WHY}")
def test_segue_jam_follows_a_link_session_in_a_private_namespace():
    """A real `segue jam --clock link` process (JACK dummy driver for its audio) and a Link peer, in one
    loopback-only namespace: the jam takes the session's tempo (also after a change) and its bar phase."""
    from tests.live.harness import JackServer

    why = JackServer.unavailable()
    if why:
        pytest.skip(f"JACK path unavailable: {why}")
    cmd = f"ip link set lo up && ip link set lo multicast on && exec {sys.executable} {HERE / 'live' / 'link_jam.py'}"
    run = subprocess.run(["unshare", "--net", "sh", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["source"] == "link" and out["running"] and out["exit"] == 0, out
    assert abs(out["bpm1"] - 133.0) < 0.01 and abs(out["bpm2"] - 141.0) < 0.01, out
    # The status is read over OSC after the fact: allow 0.05 beat (~20 ms) for that, not for the clock.
    assert abs(out["phase1"]) < 0.05 and abs(out["phase2"]) < 0.05, out
