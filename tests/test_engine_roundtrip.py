"""Real UDP round trips on 127.0.0.1 against a real `segue serve` process (dsp backend)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from segue.bridge.client import request_args
from conftest import ROOT, groove, read_audio, start_engine, stop_engine, write_wav
from segue.engine.timeline import Grid, bars_to_samples


def call(engine, address, positional, **opts):
    with engine.client() as c:
        return c.call(address, request_args(f"t{time.monotonic_ns()}", positional, opts), timeout=120)


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_ping_and_status(engine):
    with engine.client() as c:
        pong = c.call("/segue/ping", ["p1"])
        assert pong.final.address == "/segue/pong"
        assert pong.final.args[:3] == ["p1", "0.1.0", "dsp"]
        st = c.call("/segue/status", ["s1"])
        assert st.final.address == "/segue/status"
        assert st.final.args[0] == "s1" and st.final.args[1] in ("idle", "busy") and st.final.args[2] == "dsp"
        assert isinstance(st.final.args[3], int)
        detail = c.call("/segue/status", ["s2", "detail", 1])
        info = json.loads(detail.final.args[5])
        assert info["device"] == "cpu" and 10e6 < info["rss_bytes"] < 300e6  # the dsp engine stays small


def test_inpaint_exact_length_rate_channels_and_source_untouched(engine, sources):
    src = sources["loop48"]
    before = sha(src)
    start, end = 10.123456789, 12.123456789
    out = call(engine, "/segue/inpaint", [str(src), start, end], bpm=120.0, sig="4/4")
    assert out.final.address == "/segue/done", out.final.args
    kinds = [e.address for e in out.events]
    assert kinds[0] == "/segue/accepted" and "/segue/progress" in kinds
    stages = [e.args[2] for e in out.events if e.address == "/segue/progress"]
    assert "analyse" in stages and "write" in stages and any("grid" in s for s in stages)
    path, seconds, sr = out.final.args[1], out.final.args[2], out.final.args[3]
    y, file_sr = read_audio(path)
    assert file_sr == sr == 48000
    assert y.shape == (2, round((end - start) * 48000))
    assert seconds == pytest.approx(y.shape[1] / 48000, abs=1e-9)
    assert sha(src) == before
    assert os.path.dirname(path).startswith(str(engine.root.parent))  # under the engine's XDG data dir
    # The edges continue the source: no step bigger than the source's own sample-to-sample changes.
    x, _ = read_audio(src)
    a = round(start * 48000)
    b = a + y.shape[1]
    typical = np.percentile(np.abs(np.diff(x[0])), 99.9)
    assert abs(y[0, 0] - x[0, a - 1]) <= typical + 1e-3
    assert abs(x[0, b] - y[0, -1]) <= typical + 1e-3


def test_inpaint_resamples_to_project_rate(engine, sources):
    out = call(engine, "/segue/inpaint", [str(sources["loop44_mono"]), 3.0, 4.5], bpm=120.0, sr=48000)
    assert out.final.address == "/segue/done", out.final.args
    y, sr = read_audio(out.final.args[1])
    assert sr == 48000 and y.shape == (1, round(1.5 * 48000))


@pytest.mark.parametrize("bpm,sig,bars,sr", [(87.5, "7/8", 3, 44100), (120.0, "4/4", 2, 96000),
                                             (87.5, "7/8", 1.5, 48000)])
def test_continue_exact_bars(engine, sources, bpm, sig, bars, sr):
    num, den = map(int, sig.split("/"))
    out = call(engine, "/segue/continue", [str(sources["odd"]), 16.0, float(bars)], bpm=bpm, sig=sig, sr=sr)
    assert out.final.address == "/segue/done", out.final.args
    y, file_sr = read_audio(out.final.args[1])
    expect = round(bars * (num * 4 / den) * 60 / bpm * sr)
    assert expect == bars_to_samples(bars, Grid(bpm, num, den), sr)
    assert file_sr == sr and y.shape == (2, expect)
    assert np.sqrt(np.mean(y ** 2)) > 0.01  # real audio, not silence


def test_seven_eight_bar_length_and_rounding():
    assert Grid(120.0, 7, 8).bar_seconds == pytest.approx(1.75)
    from segue.engine.timeline import round_half_up, span_to_samples

    assert round_half_up(2.5) == 3 and round(2.5) == 2      # not Python's round-half-even
    assert span_to_samples(0.5, 1.0, 3) == (2, 2)           # 1.5 -> 2 for both start and length


def test_variations_differ_and_are_reproducible(engine, sources):
    src = str(sources["loop48"])
    a = call(engine, "/segue/continue", [src, 20.0, 2.0], bpm=120.0, variations=3, seed=5)
    assert a.final.address == "/segue/done", a.final.args
    paths = [a.final.args[1]] + a.final.args[4:]
    assert len(paths) == 3 and len(set(paths)) == 3
    clips = [read_audio(p)[0] for p in paths]
    assert not np.allclose(clips[0], clips[1]) or not np.allclose(clips[1], clips[2])
    # variation k uses seed + k: a single request with seed 6 reproduces variation 2
    b = call(engine, "/segue/continue", [src, 20.0, 2.0], bpm=120.0, seed=6)
    np.testing.assert_allclose(read_audio(b.final.args[1])[0], clips[1], atol=1e-6)


def test_short_gap_uses_janssen(engine, sources):
    out = call(engine, "/segue/inpaint", [str(sources["loop48"]), 5.0, 5.04], bpm=120.0)
    assert out.final.address == "/segue/done"
    assert any("Janssen" in e.args[2] for e in out.events if e.address == "/segue/progress")
    y, _ = read_audio(out.final.args[1])
    assert y.shape == (2, 1920)


def test_inpaint_without_grid_says_what_it_did(engine, sources):
    out = call(engine, "/segue/inpaint", [str(sources["loop48"]), 14.0, 16.0])
    assert out.final.address == "/segue/done", out.final.args
    stages = " | ".join(e.args[2] for e in out.events if e.address == "/segue/progress")
    assert "estimated" in stages or "onset level" in stages


def test_out_folder_under_allowed_root(engine, sources):
    target = engine.root / "renders" / "song1"
    out = call(engine, "/segue/inpaint", [str(sources["loop48"]), 2.0, 3.0], bpm=120.0, out=str(target))
    assert out.final.address == "/segue/done", out.final.args
    assert os.path.dirname(out.final.args[1]) == str(target)
    assert not [p for p in os.listdir(target) if p.startswith(".")]  # no temporary files left


def test_reply_port_routes_replies(engine, sources):
    import socket

    from segue.bridge.protocol import decode

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        with engine.client() as c:
            c.send("/segue/ping", ["routed", "reply_port", port])
            assert c.receive(0.3) is None  # nothing came back to the sender
        (address, args), = decode(listener.recvfrom(65535)[0])
        assert address == "/segue/pong" and args[0] == "routed"


def test_queue_cancel_and_busy(tmp_path):
    eng = start_engine(tmp_path, "--queue-size", "2")
    try:
        src = write_wav(tmp_path / "allowed" / "long.wav", groove(240.0, 96000), 96000)
        with eng.client() as c:
            ids = [f"job{i}" for i in range(4)]
            replies = {}
            for rid in ids:  # a slow first job keeps the worker busy
                c.send("/segue/continue", request_args(rid, [str(src), 239.0, 64.0], {"bpm": 120.0, "variations": 8}))
                while rid == "job0":  # wait until the worker has taken it, so the queue holds only the rest
                    r = c.receive(10.0)
                    if r.address == "/segue/accepted":
                        replies["job0"] = r
                    if r.address == "/segue/progress":
                        break
            t_end = time.monotonic() + 10
            while time.monotonic() < t_end and len(replies) < 4:
                r = c.receive(1.0)
                if r and r.address in ("/segue/accepted", "/segue/error") and r.args[0] not in replies:
                    replies[r.args[0]] = r
            assert replies["job0"].address == "/segue/accepted"
            assert replies["job1"].address == "/segue/accepted" and replies["job1"].args[1] == 1
            assert replies["job2"].address == "/segue/accepted"
            assert replies["job3"].address == "/segue/error" and replies["job3"].args[1] == "busy"
            c.send("/segue/cancel", ["job2"])   # queued: dropped at once
            c.send("/segue/cancel", ["job0"])   # running: stops at its next step
            finals = {}
            t_end = time.monotonic() + 120
            while time.monotonic() < t_end and len(finals) < 3:
                r = c.receive(1.0)
                if r and r.address in ("/segue/done", "/segue/error"):
                    assert r.args[0] not in finals, "a request ended twice"
                    finals[r.args[0]] = r
            assert finals["job2"].args[1] == "cancelled"
            assert finals["job0"].address == "/segue/error" and finals["job0"].args[1] == "cancelled"
            assert finals["job1"].address == "/segue/done"
        assert eng.alive()
    finally:
        stop_engine(eng)


def test_request_timeout(engine, sources):
    out = call(engine, "/segue/continue", [str(sources["loop48"]), 29.0, 64.0], bpm=120.0, variations=8,
               timeout=0.001)
    assert out.final.address == "/segue/error" and out.final.args[1] == "timeout"
    assert engine.alive()


def test_cli_client_prints_path_and_writes_status_file(engine, sources, tmp_path):
    status = tmp_path / "status.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "segue.engine.cli", "continue", str(sources["loop48"]), "30", "2",
                        "--bpm", "120", "--sr", "44100", "--port", str(engine.port), "--id", "cli1",
                        "--status-file", str(status)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    y, sr = read_audio(path)
    assert sr == 44100 and y.shape[1] == 4 * 44100
    fields = dict(line.split("=", 1) for line in status.read_text().splitlines())
    assert fields["state"] == "done" and fields["path"] == path and fields["id"] == "cli1"


def test_cli_client_error_and_no_engine(engine, sources, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "segue.engine.cli", "inpaint", str(sources["loop48"]), "5", "4",
                        "--port", str(engine.port)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "bad_region" in r.stderr
    from conftest import free_port

    status = tmp_path / "st.txt"
    r = subprocess.run([sys.executable, "-m", "segue.engine.cli", "ping", "--port", str(free_port()),
                        "--status-file", str(status)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 3 and "no_engine" in r.stderr and "segue serve" in r.stderr
    assert "code=no_engine" in status.read_text()


def test_liblo_oscsend_and_oscdump(engine, sources, tmp_path):
    """An independent OSC implementation (liblo) drives the engine and receives the reply."""
    from conftest import free_port

    port = free_port()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        subprocess.run(["oscsend", "127.0.0.1", str(engine.port), "/segue/inpaint", "ssddsdsi",
                        "liblo1", str(sources["loop48"]), "8.0", "10.0", "bpm", "120", "reply_port", str(port)],
                       check=True, timeout=10)
        lines = []
        t_end = time.monotonic() + 30
        import select

        while time.monotonic() < t_end and not any("/segue/done" in ln or "/segue/error" in ln for ln in lines):
            ready, _, _ = select.select([dump.stdout], [], [], 1.0)
            if ready:
                lines.append(dump.stdout.readline())
        done = [ln for ln in lines if "/segue/done" in ln]
        assert done, lines
        assert done[0].split()[2] == "ssdi"  # id, path, float64 seconds, int sr
        path = done[0].split('"')[3]
        y, sr = read_audio(path)
        assert y.shape == (2, 96000) and sr == 48000
    finally:
        dump.kill()


def test_f32_option_sends_no_float64(engine, sources):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(30)
        from segue.bridge.protocol import Double, encode

        s.sendto(encode("/segue/inpaint", ["f32a", str(sources["loop48"]), Double(3.0), Double(4.0),
                                           "bpm", Double(120.0), "f32", 1]), ("127.0.0.1", engine.port))
        while True:
            data = s.recvfrom(65535)[0]
            if data.startswith(b"/segue/done"):
                break
        assert b",ssfi" in data and b",ssdi" not in data


def test_ten_minute_and_one_second_sources(engine, sources, tmp_path_factory):
    """The dsp backend's range of source lengths: 10 minutes (22.05 kHz mono) and 1 second."""
    d = tmp_path_factory.mktemp("lengths")
    long = write_wav(d / "ten_minutes.wav", np.tile(groove(30.0, 22050, channels=1), (1, 20)), 22050)
    for opts in ({"bpm": 120.0}, {}):  # given grid, and estimated over the region's neighbourhood
        out = call(engine, "/segue/inpaint", [str(long), 300.25, 302.25], **opts)
        assert out.final.address == "/segue/done", out.final.args
        y, sr = read_audio(out.final.args[1])
        assert sr == 22050 and y.shape == (1, 44100)
    # one second of audio: a drum-hit-sized gap is filled (AR), a bar-long one is refused honestly
    out = call(engine, "/segue/inpaint", [str(sources["short"]), 0.5, 0.55])
    assert out.final.address == "/segue/done", out.final.args
    # (0.55 - 0.5) * 22050 = 1102.5000000000009: round half up gives 1103, as any client computes it
    assert read_audio(out.final.args[1])[0].shape == (2, 1103)
    out = call(engine, "/segue/inpaint", [str(sources["short"]), 0.2, 0.8], bpm=120.0)
    assert out.final.address == "/segue/error" and out.final.args[1] == "insufficient_context"
