"""End to end: the REAPER scripts (stand-in `reaper` table) drive the real `segue` client
against a real `segue serve --backend dsp` on 127.0.0.1; the files that land on the
fake timeline are read back with pedalboard.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "reaper"))
import reaper_harness as h  # noqa: E402
from conftest import read_audio, write_wav  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("lua5.4") is None, reason="lua5.4 is not installed (apt-get install lua5.4)")

SRC_SR = 44100
PROJECT_SR = 48000
BPM, NUM, DEN = 87.5, 7, 8
BAR = NUM * 4 / DEN * 60 / BPM   # 2.4 s


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def segue_program(tmp: Path) -> Path:
    """The installed `segue` console script next to this Python, else a wrapper around engine.cli."""
    exe = Path(sys.executable).parent / "segue"
    if exe.exists():
        return exe
    wrapper = tmp / "segue"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={h.ROOT} exec {sys.executable} -m segue.engine.cli \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def drum_loop(seconds: float, sr: int, bpm: float, num: int, den: int, channels: int = 2) -> np.ndarray:
    """A rendered drum-like loop on an exact grid: kick on the bar line, snare, hats, through a small room."""
    from pedalboard import Compressor, Pedalboard, Reverb

    rng = np.random.default_rng(3)
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float32)
    unit = 60.0 / bpm * 4.0 / den
    t = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * (45 + 100 * np.exp(-t * 35)) * t) * np.exp(-t * 8)
    snare = rng.standard_normal(len(t)) * np.exp(-t * 18) * 0.5 + 0.3 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25)
    hat = rng.standard_normal(len(t) // 4) * np.exp(-t[: len(t) // 4] * 90) * 0.2
    k = 0
    while k * unit < seconds:
        s = int(round(k * unit * sr))
        beat = k % num
        for hit in ([kick] if beat == 0 else [snare] if beat in (3, 5) else []) + [hat]:
            m = min(len(hit), n - s)
            # played, not pasted: each hit's level varies, so no two bars are sample-identical and dsp
            # can offer distinct takes (an exactly repeating loop honestly gets fewer)
            out[s:s + m] += (rng.uniform(0.6, 1.0) * hit[:m]).astype(np.float32)
        k += 1
    board = Pedalboard([Compressor(threshold_db=-12, ratio=3), Reverb(room_size=0.2, wet_level=0.1)])
    stereo = np.stack([out, np.roll(out, 7)])[:channels]
    wet = board(stereo, sr)
    return (0.6 * wet / np.max(np.abs(wet))).astype(np.float32)


@pytest.fixture(scope="module")
def live_engine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reaper-engine")
    exe = segue_program(tmp)
    port = free_port()
    allowed = tmp / "renders"
    allowed.mkdir()
    log = tmp / "engine.log"
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "xdg"))
    proc = subprocess.Popen([str(exe), "serve", "--backend", "dsp", "--port", str(port), "--allow-dir", str(allowed)],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while True:
        ping = subprocess.run([str(exe), "ping", "--port", str(port)], capture_output=True, text=True)
        if ping.returncode == 0:
            break
        assert proc.poll() is None, f"segue serve exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"segue serve did not answer:\n{log.read_text()}"
        time.sleep(0.2)
    yield {"exe": exe, "port": port, "out": allowed, "log": log}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    d = tmp_path_factory.mktemp("reaper-src")
    return write_wav(d / "drums 87.5 7-8.wav", drum_loop(12.0, SRC_SR, BPM, NUM, DEN), SRC_SR)


def settings(live_engine, **kw):
    return {"exe": str(live_engine["exe"]), "port": str(live_engine["port"]), "out": str(live_engine["out"]),
            "seed": "1", **kw}


def project(loop, sel, item_len=10.0, selected_track=False, srate_use=True):
    return {"srate": PROJECT_SR, "srate_use": srate_use, "device_srate": 44100, "time_selection": list(sel),
            "tempo": [{"time": 0.0, "bpm": BPM, "num": NUM, "den": DEN}],
            "tracks": [{"name": "Drums", "selected": selected_track,
                        "items": [{"position": 3.0, "length": item_len, "selected": not selected_track,
                                   "takes": [{"file": str(loop), "startoffs": 1.0}]}]}]}


def check_landed(take, live_engine, seconds, sr=PROJECT_SR, channels=2):
    assert take["startoffs"] == 0 and take["playrate"] == 1
    path = Path(take["file"])
    assert path.parent == live_engine["out"], path
    audio, rate = read_audio(path)
    assert rate == sr and audio.shape == (channels, round(seconds * sr))
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 1e-3
    return audio


def run(tmp_path, *args, **kw):
    rep = h.run_case(tmp_path, *args, max_seconds=120, **kw)
    assert rep["errors"] == [] and not rep["timed_out"], rep["errors"]
    return rep


def test_inpaint_lands_the_exact_length_at_the_selection_start(live_engine, loop, tmp_path):
    sel = (5.0 + BAR / 3, 5.0 + BAR / 3 + 1.37)          # off the grid on purpose
    rep = run(tmp_path, "inpaint", project(loop, sel), settings(live_engine))
    assert rep["messages"] == [], rep["messages"]
    left, mid, right = h.items(rep)
    assert mid["position"] == sel[0] and abs(mid["length"] - (sel[1] - sel[0])) < 1e-9
    assert right["position"] == sel[1]
    check_landed(mid["takes"][mid["active"] - 1], live_engine, sel[1] - sel[0])
    assert len(rep["undo"]) == 1 and rep["undo"][0]["flags"] == 4


def test_inpaint_item_mode_at_device_rate(live_engine, loop, tmp_path):
    sel = (7.0, 8.2)
    rep = run(tmp_path, "inpaint", project(loop, sel, selected_track=True, srate_use=False),
              settings(live_engine, landing="item"))
    assert rep["messages"] == []
    orig, new = sorted(h.items(rep), key=lambda i: i["uid"])
    assert (orig["position"], orig["length"]) == (3.0, 10.0)
    assert new["position"] == 7.0 and abs(new["length"] - 1.2) < 1e-9
    check_landed(new["takes"][0], live_engine, 1.2, sr=44100)


def test_continue_lands_bars_at_the_item_end(live_engine, loop, tmp_path):
    rep = run(tmp_path, "continue", project(loop, (0.0, 0.0)), settings(live_engine),
              inputs=[{"ok": True, "values": "2"}])
    assert rep["messages"] == []
    orig, new = h.items(rep)
    assert new["position"] == 13.0 and abs(new["length"] - 2 * BAR) < 1e-9
    check_landed(new["takes"][0], live_engine, 2 * BAR)


def test_variations_land_as_takes(live_engine, loop, tmp_path):
    rep = run(tmp_path, "variations", project(loop, (6.0, 7.0)), settings(live_engine),
              inputs=[{"ok": True, "values": "2"}])
    assert rep["messages"] == []
    mid = h.items(rep)[1]
    assert mid["position"] == 6.0 and len(mid["takes"]) == 3
    files = {t["file"] for t in mid["takes"][1:]}
    assert len(files) == 2
    for take in mid["takes"][1:]:
        check_landed(take, live_engine, 1.0)


def test_generate_on_dsp_shows_the_engine_error(live_engine, loop, tmp_path):
    rep = run(tmp_path, "generate", project(loop, (4.0, 6.4), selected_track=True), settings(live_engine),
              inputs=[{"ok": True, "values": "tight funk drums"}])
    assert len(rep["messages"]) == 1 and "cannot do this" in rep["messages"][0]["msg"]
    assert rep["undo"] == []


def test_engine_error_reply_is_shown(live_engine, tmp_path):
    short = write_wav(tmp_path / "short.wav", drum_loop(4.0, SRC_SR, BPM, NUM, DEN), SRC_SR)
    proj = project(short, (3.5, 6.0), item_len=3.0)
    proj["tracks"][0]["items"][0]["takes"][0]["startoffs"] = 0.0
    rep = run(tmp_path, "inpaint", proj, settings(live_engine))
    assert len(rep["messages"]) == 1
    text = rep["messages"][0]["msg"]
    assert "Too little audio" in text and "longer than the rest of the file" in text
    assert rep["undo"] == []


def test_engine_not_running_is_reported(live_engine, loop, tmp_path):
    port = free_port()
    rep = run(tmp_path, "inpaint", project(loop, (6.0, 7.0)), settings(live_engine, port=str(port)))
    assert len(rep["messages"]) == 1
    text = rep["messages"][0]["msg"]
    assert "not running" in text and f"segue serve --port {port}" in text
    assert rep["undo"] == [] and len(h.items(rep)) == 1


def _pids_with(*needles: str) -> list[int]:
    """Processes whose command line holds every needle (here: the engine the script started)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if all(n in cmd for n in needles) and " serve " in cmd:
                pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the auto-started engine through /proc")
def test_autostart_runs_segue_serve_then_the_request(live_engine, loop, tmp_path):
    port = str(free_port())
    out = tmp_path / "auto-renders"
    out.mkdir()
    ext = settings(live_engine, port=port, out=str(out), autostart="1")
    try:
        rep = run(tmp_path, "inpaint", project(loop, (6.0, 7.0)), ext, env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
        assert rep["messages"] == [], rep["messages"]
        started = [e["argv"] for e in rep["exec"] if e["argv"][1] == "serve"]
        assert len(started) == 1 and h.argv_options(started[0])["allow-dir"] == str(out)
        mid = h.items(rep)[1]
        take = mid["takes"][mid["active"] - 1]
        assert Path(take["file"]).parent == out
        audio, rate = read_audio(take["file"])
        assert rate == PROJECT_SR and audio.shape == (2, PROJECT_SR)
        assert "starting the engine" in rep["console"]
    finally:
        for pid in _pids_with("--port", port, str(out)):
            os.kill(pid, 15)


def test_localhost_in_the_settings_reaches_the_engine(live_engine, loop, tmp_path):
    rep = run(tmp_path, "continue", project(loop, (0.0, 0.0)), settings(live_engine, host="localhost"),
              inputs=[{"ok": True, "values": "1"}])
    assert rep["messages"] == [], rep["messages"]
    orig, new = h.items(rep)
    check_landed(new["takes"][0], live_engine, BAR)
    assert h.argv_options(next(e["argv"] for e in rep["exec"] if e["argv"][1] == "continue"))["host"] == "localhost"
