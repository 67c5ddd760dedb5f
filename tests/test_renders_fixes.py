"""The data folder as a new user meets it: `segue renders` after a killed write, and `segue demo`
when the data folder cannot be made. Real processes, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, groove, write_wav

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# A write killed with SIGKILL after write_wav_atomic has written its temporary file
# (`.NAME.XXXXXXXX.part.wav`) and before it renames it: the temporary stays behind. (The stall is
# in os.link, the rename's first step, so it does not depend on how the audio is written.)
KILLED_WRITER = """
import os, sys, time
from pathlib import Path
import numpy as np
from segue.engine.audio_io import write_wav_atomic

def stall(*args, **kw):
    print("writing", flush=True)
    time.sleep(600)

os.link = stall
write_wav_atomic(Path(sys.argv[1]), sys.argv[2], np.zeros((2, 4800), dtype=np.float32), 48000)
"""


def segue(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "segue.engine.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=str(ROOT), env={**ENV, **(env or {})})


def kill_mid_write(folder: Path, name: str) -> Path:
    """Start a real write of `name` in `folder`, kill -9 it mid-write, return the temporary it left."""
    before = set(folder.iterdir())
    proc = subprocess.Popen([PY, "-c", KILLED_WRITER, str(folder), name], stdout=subprocess.PIPE, text=True,
                            cwd=str(ROOT), env=ENV)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    (left,) = set(folder.iterdir()) - before
    assert left.name.startswith(f".{name}.") and left.name.endswith(".part.wav"), left.name
    assert not (folder / name).exists()
    return left


def test_a_temporary_left_by_a_killed_write_is_never_listed_and_pruned_once_stale(tmp_path):
    xdg = tmp_path / "xdg"
    renders = xdg / "segue" / "renders"
    renders.mkdir(parents=True)
    env = {"XDG_DATA_HOME": str(xdg)}
    render = write_wav(renders / "loop-continue-r1-0a1b2c-v1.wav", groove(1.0, 48000), 48000)
    stale = kill_mid_write(renders, "loop-continue-r2-0a1b2c-v1.wav")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))        # the crash was two hours ago
    fresh = kill_mid_write(renders, "loop-continue-r3-0a1b2c-v1.wav")   # may be a write in progress

    listed = segue("renders", env=env)
    assert listed.returncode == 0, listed.stderr
    assert render.name in listed.stdout and "1 file(s)" in listed.stdout, listed.stdout
    assert ".part.wav" not in listed.stdout and stale.name not in listed.stdout, listed.stdout
    assert "also 1 temporary file(s) left by interrupted writes" in listed.stdout

    dry = segue("renders", "--older-than", "7d", "--dry-run", env=env)
    assert dry.returncode == 0 and f"would remove {stale}" in dry.stdout, dry.stdout
    assert "kept 1" in dry.stdout and stale.exists()

    pruned = segue("renders", "--older-than", "7d", env=env)   # no render is a week old: only the stale temporary goes
    assert pruned.returncode == 0, pruned.stderr
    assert f"removed {stale}" in pruned.stdout and "removed 1 file(s)" in pruned.stdout and "kept 1" in pruned.stdout
    assert not stale.exists() and fresh.exists() and render.exists()

    # a write in progress is not touched even by the tightest limit
    pruned = segue("renders", "--max-size", "0", env=env)
    assert pruned.returncode == 0 and "removed 1 file(s)" in pruned.stdout, pruned.stdout
    assert fresh.exists() and not render.exists()


def test_list_renders_and_prune_in_process(tmp_path):
    from segue.engine.renders import STALE_TEMPORARY_S, describe, list_renders, prune

    render = tmp_path / "a-inpaint-x-0a1b2c-v1.wav"
    render.write_bytes(b"\0" * 1000)
    part = tmp_path / ".a-inpaint-x-0a1b2c-v2.wav.deadbeef.part.wav"
    part.write_bytes(b"\0" * 500)
    now = os.stat(part).st_mtime
    assert [r.path for r in list_renders([tmp_path], now=now)] == [render]                  # a write in progress
    files = list_renders([tmp_path], now=now + STALE_TEMPORARY_S + 1)
    assert [(r.path, r.temporary) for r in files] == [(render, False), (part, True)]
    assert "1 file(s), 0.0 MB" in describe([tmp_path], files) and part.name not in describe([tmp_path], files)
    removed, freed = prune(files, max_size=10_000, now=now + STALE_TEMPORARY_S + 1)
    assert [r.path for r in removed] == [part] and freed == 500
    assert render.exists() and not part.exists()


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
