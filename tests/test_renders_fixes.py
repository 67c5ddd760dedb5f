"""The data folder as a new user meets it: `segue demo` when the data folder cannot be made.
Real processes, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def segue(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "segue.engine.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=str(ROOT), env={**ENV, **(env or {})})


@pytest.mark.parametrize("argv", [["demo", "--loop-only"], ["demo"]])
def test_demo_with_a_data_folder_that_cannot_be_made_says_which_and_why(tmp_path, argv):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    proc = segue(*argv, env={"XDG_DATA_HOME": str(blocker)})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error write_failed: cannot create the demo folder "), line
    assert str(blocker / "segue" / "demo") in line and f"{blocker} is a file, not a folder" in line, line
    assert "XDG_DATA_HOME" in line


def test_demo_loop_only_still_writes_the_loop(tmp_path):
    proc = segue("demo", "--loop-only", env={"XDG_DATA_HOME": str(tmp_path / "new" / "xdg")})
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == tmp_path / "new" / "xdg" / "segue" / "demo" / "demo-loop-120bpm.wav" and path.stat().st_size > 0
    import soundfile as sf

    y, sr = sf.read(str(path), always_2d=True)
    assert sr == 44100 and y.shape == (8 * 44100, 2) and np.max(np.abs(y)) > 0.1
