"""README.md cannot drift from the product: its examples run, as written, in order.

The block after the `readme-test` marker is taken from README.md itself and run by
bash against a real engine (the block starts it with `segue serve &`). A `segue`
on PATH runs this checkout; $SEGUE_PORT keeps the engine off the default port and
$XDG_DATA_HOME keeps the demo loop and the renders in a temporary folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from conftest import ROOT, free_port, read_audio

README = ROOT / "README.md"


def readme_block() -> str:
    text = README.read_text()
    marker = text.index("<!-- readme-test")
    m = re.search(r"```sh\n(.*?)```", text[marker:], re.S)
    assert m, "no ```sh block after the readme-test marker"
    return m.group(1)


def test_readme_starts_with_the_two_commands():
    first = re.search(r"```sh\n(.*?)```", README.read_text(), re.S).group(1).splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_readme_examples_run_as_written(tmp_path):
    block = readme_block()
    assert "segue serve &" in block and "segue cancel long-take" in block
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "segue"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m segue.engine.cli "$@"\n')
    exe.chmod(0o755)
    script = tmp_path / "readme.sh"
    script.write_text("set -e\n" + block)
    xdg = tmp_path / "xdg"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SEGUE_PORT": str(free_port()),
           "XDG_DATA_HOME": str(xdg)}
    work = tmp_path / "clone"
    work.mkdir()
    proc = subprocess.Popen(["bash", str(script)], cwd=str(work), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)   # whatever the block left running
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    renders = xdg / "segue" / "renders"
    wavs = [line for line in out.splitlines() if line.endswith(".wav") and line.startswith("/")]
    inpaint = [p for p in wavs if "-inpaint-" in p]
    cont = [p for p in wavs if "-continue-" in p]
    assert len(inpaint) == 1 and len(cont) == 2, out
    audio, sr = read_audio(inpaint[0])
    assert sr == 48000 and audio.shape[1] == 96000          # 2.0 s at --sr 48000
    audio, sr = read_audio(cont[0])
    # 4 bars of 4/4 at 120 BPM = 8 s. (The rate should be the source's 44.1 kHz; until issue 11
    # fault 3 is fixed the engine may reuse the 48 kHz decode cached by the inpaint.)
    assert audio.shape[1] == 8 * sr
    assert "cancelled long-take" in out                     # `segue cancel` found it running
    assert "request long-take sent" in err
    assert f"renders folder: {renders}" in out and "file(s)" in out
    assert "state idle" in out or "state busy" in out
