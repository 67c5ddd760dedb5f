"""One real `segue serve` keeping musicgen-small and sao-small warm (tiny random-init models in the
official layouts), plus a third backend that fails to load: requests routed per `backend` option
over OSC, the default is the first listed, status reports each backend, the failure is reported
and the others keep serving."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from segue.bridge.client import request_args  # noqa: E402
from conftest import groove, read_audio, start_engine, stop_engine, write_wav  # noqa: E402
from segue.engine.timeline import Grid, bars_to_samples  # noqa: E402
from tests.musicgen.fixtures import write_tiny_folder  # noqa: E402
from tests.sao.fixtures import write_serving_folders  # noqa: E402


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    write_serving_folders(root / "sao")
    mg = write_tiny_folder(root / "musicgen-small")
    eng = start_engine(root, "--model", f"musicgen-small={mg}", "--model", f"sao-small={root / 'sao' / 'model'}",
                       "--text-encoder", f"sao-small={root / 'sao' / 't5'}", "--model", f"sa3-small={root / 'nowhere'}",
                       "--precision", "fp32", "--option", "musicgen-small.threads=1",
                       backend="musicgen-small,sao-small,sa3-small")
    eng.src = write_wav(root / "allowed" / "src.wav", groove(4.0, 48000), 48000)
    yield eng
    stop_engine(eng)


def test_status_lists_each_backend_and_the_failure(multi):
    with multi.client() as c:
        out = c.call("/segue/status", ["st", "detail", 1])
    assert out.final.args[2] == "musicgen-small"                       # the first listed is the default
    info = json.loads(out.final.args[5])
    assert set(info["backends"]) == {"musicgen-small", "sao-small", "dsp"}
    for name in ("musicgen-small", "sao-small"):
        assert info["backends"][name]["device"] == "cpu" and info["backends"][name]["dtype"] == "float32"
    assert "sa3-small" in info["failed"] and "nowhere" in info["failed"]["sa3-small"]


def test_requests_are_routed_by_the_backend_option(multi):
    n = bars_to_samples(0.5, Grid(120.0), 48000)
    with multi.client() as c:
        stages = {}
        for rid, opts in (("default", {}), ("mg", {"backend": "musicgen-small"}), ("sao", {"backend": "sao-small"}),
                          ("dsp", {"backend": "dsp"})):
            r = c.call("/segue/continue", request_args(rid, [str(multi.src), 4.0, 0.5], {"bpm": 120.0, **opts}),
                       timeout=300)
            assert r.final.address == "/segue/done", (rid, r.final.args)
            y, sr = read_audio(r.final.args[1])
            assert sr == 48000 and y.shape == (2, n) and np.all(np.isfinite(y))
            stages[rid] = [e.args[2] for e in r.events if e.address == "/segue/progress"]
        # musicgen reports tokens, sao-small sampling steps or chunks: each request ran where it was sent
        assert any(s.startswith("tokens") for s in stages["default"])
        assert any(s.startswith("tokens") for s in stages["mg"])
        assert not any(s.startswith("tokens") for s in stages["sao"]), stages["sao"]
        assert any(s.startswith(("generate", "chunk")) for s in stages["sao"]), stages["sao"]
        assert not any(s.startswith("tokens") for s in stages["dsp"])
        # inpaint: refused by musicgen-small, served by sao-small in the same engine
        r = c.call("/segue/inpaint", request_args("i1", [str(multi.src), 1.0, 1.5], {"bpm": 120.0}), timeout=60)
        assert r.final.address == "/segue/error" and r.final.args[1] == "unsupported"
        r = c.call("/segue/inpaint", request_args("i2", [str(multi.src), 1.0, 1.5], {"bpm": 120.0, "backend": "sao-small"}),
                   timeout=300)
        assert r.final.address == "/segue/done", r.final.args
        r = c.call("/segue/continue", request_args("x", [str(multi.src), 4.0, 0.5], {"bpm": 120.0, "backend": "sa3-small"}),
                   timeout=60)
        assert r.final.address == "/segue/error" and r.final.args[1] == "backend_unavailable"
    assert multi.alive()
