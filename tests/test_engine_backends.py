"""One engine, several backends (issue 12, engine side), and the Engine's contract with a backend.

Real `segue serve` processes with dsp beside sao-small on the tiny checkpoint the
sao tests build; in-process Engine runs with stand-in backends for what a real
backend cannot be made to do on demand (fewer distinct variations, a reply that fails).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from segue.bridge.client import request_args
from conftest import groove, read_audio, start_engine, stop_engine, write_wav
from segue.engine.backends.base import Backend, Capabilities
from segue.engine.engine import Engine
from segue.engine.paths import OutputRoots
from segue.engine.request import Request


# ---- in-process: the Engine with stand-in backends --------------------------------------------


class Echo(Backend):
    """Returns the source's own audio for the span, `distinct` times at most."""
    name = "echo"

    def __init__(self, distinct: int = 99):
        super().__init__()
        self.distinct = distinct

    def capabilities(self):
        return Capabilities(inpaint=True, continue_=False, generate=False, max_output_seconds=5.0)

    def inpaint(self, task, ctx):
        y = np.array(task.audio[:, task.start_sample:task.start_sample + task.frames])
        return [y] * min(task.variations, self.distinct)


def run(engine: Engine, req: Request, reply=None, timeout: float = 30.0) -> list:
    got, done = [], threading.Event()

    def collect(kind, args):
        got.append((kind, args))
        if kind in ("done", "error"):
            done.set()
        if reply is not None:
            reply(kind, args)

    engine.submit(req, collect)
    assert done.wait(timeout), got
    return got


@pytest.fixture
def echo_engine(tmp_path):
    eng = Engine({"echo": Echo(distinct=1)}, OutputRoots(default=tmp_path / "out"))
    eng.start()
    eng.src = write_wav(tmp_path / "s.wav", groove(4.0, 22050), 22050)
    yield eng
    eng.stop()


def test_fewer_distinct_variations_than_asked_are_written_and_reported(echo_engine):
    got = run(echo_engine, Request(kind="inpaint", id="v", src=str(echo_engine.src), start=1.0, end=1.5,
                                   variations=3))
    kind, args = got[-1]
    assert kind == "done" and len(args) == 4          # id, one path, seconds, sr: one file, not three
    assert any(k == "progress" and a[2] == "1 of 3 distinct variations" for k, a in got), got
    y, sr = read_audio(args[1])
    assert sr == 22050 and y.shape == (2, 11025)


def test_output_limit_is_checked_before_acceptance(echo_engine):
    from segue.engine.errors import SegueError

    with pytest.raises(SegueError) as e:
        echo_engine.submit(Request(kind="inpaint", id="big", src=str(echo_engine.src), start=0.0, end=6.0),
                           lambda k, a: None)
    assert e.value.code == "too_long" and "at most 5 s" in e.value.message


def test_a_reply_that_raises_leaves_the_worker_serving(echo_engine):
    def broken(kind, args):
        if kind == "done":
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "a reply that cannot be sent")

    req = Request(kind="inpaint", id="b1", src=str(echo_engine.src), start=1.0, end=1.5)
    assert run(echo_engine, req, reply=broken)[-1][0] == "done"
    again = run(echo_engine, Request(kind="inpaint", id="b2", src=str(echo_engine.src), start=2.0, end=2.5))
    assert again[-1][0] == "done"
    assert echo_engine.describe()["state"] == "idle"
    assert echo_engine.result("b1")[0] == "done"     # kept for /segue/result although its send failed


# ---- real processes: dsp beside sao-small ------------------------------------------------------

import importlib.util  # noqa: E402

needs_torch = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("torch", "transformers")),
                                 reason="sao-small needs torch and transformers")


@pytest.fixture(scope="module")
def sao_root(tmp_path_factory):
    from tests.sao.fixtures import write_serving_folders

    root = write_serving_folders(tmp_path_factory.mktemp("multi"))
    return root


def stages(out) -> list[str]:
    return [e.args[2] for e in out.events if e.address == "/segue/progress"]


@needs_torch
def test_two_backends_warm_and_routed_per_request(sao_root, tmp_path):
    eng = start_engine(tmp_path, "--model", f"sao-small={sao_root / 'model'}",
                       "--text-encoder", f"sao-small={sao_root / 't5'}", "--precision", "fp32",
                       backend="sao-small,dsp")
    try:
        src = write_wav(eng.root / "src.wav", groove(6.0, 48000), 48000)
        with eng.client() as c:
            assert c.call("/segue/ping", ["p"]).final.args[2] == "sao-small"    # the first listed is the default
            detail = json.loads(c.call("/segue/status", ["s", "detail", 1]).final.args[5])
            assert set(detail["backends"]) == {"sao-small", "dsp"} and detail["failed"] == {}
            assert detail["backends"]["sao-small"]["dtype"] == "float32"
            assert detail["backends"]["dsp"]["device"] == "cpu"
            neural = c.call("/segue/inpaint", request_args("n1", [str(src), 2.0, 2.5], {"bpm": 120.0}), timeout=300)
            dsp = c.call("/segue/inpaint", request_args("d1", [str(src), 2.0, 2.5],
                                                        {"bpm": 120.0, "backend": "dsp"}), timeout=60)
        assert neural.final.address == "/segue/done", neural.final.args
        assert dsp.final.address == "/segue/done", dsp.final.args
        assert any("/8" in s for s in stages(neural)) and not any("grid:" in s for s in stages(neural))
        assert any("grid: 120 BPM" in s for s in stages(dsp)) and not any("/8" in s for s in stages(dsp))
        for out in (neural, dsp):
            y, sr = read_audio(out.final.args[1])
            assert sr == 48000 and y.shape == (2, 24000)
    finally:
        stop_engine(eng)


@needs_torch
def test_a_backend_that_fails_to_load_leaves_the_others_serving(tmp_path):
    eng = start_engine(tmp_path, "--model", f"sao-small={tmp_path / 'nowhere'}", backend="dsp,sao-small")
    try:
        src = write_wav(eng.root / "src.wav", groove(6.0, 48000), 48000)
        with eng.client() as c:
            assert c.call("/segue/ping", ["p"]).final.args[2] == "dsp"
            detail = json.loads(c.call("/segue/status", ["s", "detail", 1]).final.args[5])
            assert "nowhere" in detail["failed"]["sao-small"] and list(detail["backends"]) == ["dsp"]
            refused = c.call("/segue/inpaint", request_args("n1", [str(src), 2.0, 2.5],
                                                            {"bpm": 120.0, "backend": "sao-small"}))
            ok = c.call("/segue/inpaint", request_args("d1", [str(src), 2.0, 2.5], {"bpm": 120.0}), timeout=60)
        assert refused.final.args[1] == "backend_unavailable"
        assert "failed to load" in refused.final.args[2] and "nowhere" in refused.final.args[2]
        assert ok.final.address == "/segue/done", ok.final.args
    finally:
        stop_engine(eng)


def test_backend_options_reach_only_their_backend():
    from segue.bridge.protocol import ProtocolError, parse
    from segue.engine.audio_io import Source
    from segue.engine.validate import make_task

    msg = parse("/segue/inpaint", ["o", "/a.wav", 1.0, 2.0, "sa3-small.window", "short", "echo.depth", 3,
                                   "echo.mix", 0.5], ("127.0.0.1", 5))
    src = Source("/a.wav", np.zeros((1, 3 * 8000), np.float32), 8000, 8000, "k")
    assert make_task(msg.request, src, "echo").task.options == {"depth": 3, "mix": 0.5}
    assert make_task(msg.request, src, "sa3-small").task.options == {"window": "short"}
    assert make_task(msg.request, src, "dsp").task.options == {}
    for bad in ("window", "Echo.depth", "echo.", ".depth"):
        with pytest.raises(ProtocolError) as e:
            parse("/segue/inpaint", ["o", "/a.wav", 1.0, 2.0, bad, 1], ("127.0.0.1", 5))
        assert e.value.code == "unknown_option"


def test_backend_options_over_osc(tmp_path):
    seen = {}

    class Spy(Echo):
        def inpaint(self, task, ctx):
            seen.update(task.options)
            return super().inpaint(task, ctx)

    eng = Engine({"echo": Spy()}, OutputRoots(default=tmp_path / "out"))
    eng.start()
    try:
        from segue.bridge.osc_server import OscServer
        from segue.bridge.client import EngineClient

        server = OscServer(eng, "127.0.0.1", 0)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        src = write_wav(tmp_path / "s.wav", groove(4.0, 22050), 22050)
        with EngineClient("127.0.0.1", server.address[1]) as c:
            out = c.call("/segue/inpaint", request_args("bo", [str(src), 1.0, 1.5], {"echo.depth": 3,
                                                                                     "other.x": "y"}), timeout=30)
        assert out.final.address == "/segue/done", out.final.args
        assert seen == {"depth": 3}
    finally:
        server.stop()
        eng.stop()
        server.close()


def test_submit_touches_no_file_the_worker_does(tmp_path, monkeypatch):
    """Fault 9: the receive thread (here: the caller of submit) never resolves folders or probes sources."""
    import segue.engine.pipeline as pipeline

    calls = []

    class Roots(OutputRoots):
        def resolve(self, out):
            calls.append(("resolve", threading.current_thread().name))
            return super().resolve(out)

    real_probe = pipeline.probe
    monkeypatch.setattr(pipeline, "probe", lambda p: calls.append(("probe", threading.current_thread().name))
                        or real_probe(p))
    eng = Engine({"echo": Echo()}, Roots(default=tmp_path / "out"))
    eng.start()
    try:
        src = write_wav(tmp_path / "s.wav", groove(4.0, 22050), 22050)
        got = run(eng, Request(kind="inpaint", id="f9", src=str(src), start=1.0, end=1.5))
        assert got[-1][0] == "done"
    finally:
        eng.stop()
    assert {what for what, _ in calls} == {"resolve", "probe"}
    # the worker's own short-lived I/O threads (pipeline.off_worker), never the receive thread
    assert {thread for _, thread in calls} == {"segue-io"}, calls


def test_hit_remove_on_a_short_selection_is_served_by_dsp(tmp_path, monkeypatch):
    """A backend that cannot remove hits (a generative one would only make another hit) hands a short
    `hit remove` selection to dsp; `hit replace` and longer selections stay with it. Either way the
    source's window is read once, for the backend that runs the request."""
    from segue.engine.audio_io import SourceFile
    from segue.engine.backends.dsp import DspBackend

    reads = []
    real_window = SourceFile.window
    monkeypatch.setattr(SourceFile, "window", lambda self, lo, hi, check=None:
                        reads.append((lo, hi)) or real_window(self, lo, hi, check))

    eng = Engine({"echo": Echo(), "dsp": DspBackend()}, OutputRoots(default=tmp_path / "out"))
    eng.start()
    try:
        src = write_wav(tmp_path / "s.wav", groove(4.0, 22050), 22050)
        x, _ = read_audio(src)
        a, b = 22050, 22050 + int(0.09 * 22050)
        for hit, routed in (("remove", True), ("replace", False)):
            reads.clear()
            got = run(eng, Request(kind="inpaint", id=f"h-{hit}", src=str(src), start=a / 22050, end=b / 22050,
                                   hit=hit))
            assert len(reads) == 1, (hit, reads)
            kind, args = got[-1]
            assert kind == "done", got
            y, _ = read_audio(args[1])
            echoed = np.abs(y - x[:, a:a + y.shape[1]]).max() < 1e-3     # the source back (16-bit reading)
            assert echoed != routed, (hit, got)
            assert routed == any(k == "progress" and "Janssen" in str(a_[2]) for k, a_ in got), got
            assert routed == any(k == "progress" and "interpolated by dsp" in str(a_[2]) for k, a_ in got), got
        got = run(eng, Request(kind="inpaint", id="long", src=str(src), start=1.0, end=1.5, hit="remove"))
        y, _ = read_audio(got[-1][1][1])
        assert np.abs(y - x[:, 22050:22050 + y.shape[1]]).max() < 1e-3  # 0.5 s: not a short selection
        # 1.95-2.05 s is 0.0999... s as floats but 2205 samples, exactly 0.1 s: not short for dsp
        # either, so it stays with the asked backend (it went to dsp, which then filled it with units)
        got = run(eng, Request(kind="inpaint", id="edge", src=str(src), start=1.95, end=2.05, hit="remove"))
        y, _ = read_audio(got[-1][1][1])
        assert y.shape[1] == 2205 and np.abs(y - x[:, 42998:42998 + 2205]).max() < 1e-3, got   # 1.95 s = sample 42997.5, rounded up
    finally:
        eng.stop()


def test_a_source_on_a_drive_that_stops_answering_holds_neither_the_worker_nor_the_queue(tmp_path, monkeypatch):
    """A read that never returns (a dead network mount) blocked the engine's one worker forever: its
    request never ended and every later one waited behind it. Now the request ends with `timeout` at
    its time limit and the next request is served."""
    import segue.engine.pipeline as pipeline

    hung = threading.Event()
    real_probe = pipeline.probe
    monkeypatch.setattr(pipeline, "probe", lambda p: hung.wait() if "hung" in p else real_probe(p))
    eng = Engine({"echo": Echo()}, OutputRoots(default=tmp_path / "out"), timeout=1.0)
    eng.start()
    try:
        stuck = write_wav(tmp_path / "hung.wav", groove(2.0, 22050), 22050)
        ok = write_wav(tmp_path / "fine.wav", groove(2.0, 22050), 22050)
        got = run(eng, Request(kind="inpaint", id="h1", src=str(stuck), start=0.5, end=1.0), timeout=10)
        assert got[-1][0] == "error" and got[-1][1][1] == "timeout", got
        got = run(eng, Request(kind="inpaint", id="h2", src=str(ok), start=0.5, end=1.0), timeout=10)
        assert got[-1][0] == "done", got
    finally:
        hung.set()
        eng.stop()
