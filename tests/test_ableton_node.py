"""The Max for Live device's JavaScript, tested with Node's own test runner.

- unit: ableton_m4l/tests/{core,live,device}.test.js (logic, LOM write-back
  against a LiveAPI stand-in, the Max glue in a Max-like sandbox);
- end to end: ableton_m4l/tests/e2e.test.js drives the device code against a
  real `segue serve --backend dsp` over UDP on 127.0.0.1 (engine fixture from
  conftest.py) and checks the replies and the written WAVs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS_TESTS = ROOT / "ableton_m4l" / "tests"


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node is not installed (scripts/test.sh installs nodejs)")
    return exe


def run_node_tests(files: list[Path], env: dict | None = None, timeout: float = 300) -> tuple[str, dict]:
    proc = subprocess.run([node(), "--test", "--test-reporter=tap", *map(str, files)], cwd=ROOT,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped|cancelled) (\d+)$", out, re.M)}
    assert proc.returncode == 0, out[-6000:]
    return out, counts


def test_node_unit_tests():
    files = sorted(p for p in JS_TESTS.glob("*.test.js") if p.name != "e2e.test.js")
    assert {p.name for p in files} >= {"core.test.js", "live.test.js", "device.test.js"}
    out, counts = run_node_tests(files)
    assert counts.get("fail") == 0 and counts.get("skipped", 0) == 0, out[-3000:]
    assert counts.get("pass", 0) >= 25, out[-3000:]


def test_node_e2e_against_real_engine(engine, sources, tmp_path):
    from conftest import groove, write_wav

    # 330 s mono at 22.05 kHz: spans 5 minutes in, where float32 seconds step by 30.5 us
    long_src = write_wav(tmp_path / "long_7_8.wav", groove(330.0, 22050, bpm=87.5, num=7, den=8, channels=1), 22050)
    out, counts = run_node_tests([JS_TESTS / "e2e.test.js"],
                                 env={"SEGUE_E2E_PORT": str(engine.port), "SEGUE_E2E_SRC": str(sources["odd"]),
                                      "SEGUE_E2E_LONG_SRC": str(long_src)})
    assert counts == {"tests": 4, "pass": 4, "fail": 0, "cancelled": 0, "skipped": 0}, out[-3000:]
