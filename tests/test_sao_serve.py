"""`segue serve --backend sao-small` as a real process on a tiny checkpoint: OSC round trips
for generate, inpaint and continue, status detail, and a bad model folder at start."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from segue.bridge.client import request_args  # noqa: E402
from conftest import ROOT, groove, read_audio, start_engine, stop_engine, write_wav  # noqa: E402
from segue.engine.timeline import Grid, bars_to_samples  # noqa: E402
from tests.sao.fixtures import write_serving_folders  # noqa: E402


@pytest.fixture(scope="module")
def sao_engine(tmp_path_factory):
    root = write_serving_folders(tmp_path_factory.mktemp("sao_serve"))
    eng = start_engine(root, "--model", str(root / "model"), "--text-encoder", str(root / "t5"),
                       "--precision", "fp32", backend="sao-small")
    eng.src = write_wav(root / "allowed" / "src.wav", groove(6.0, 48000), 48000)
    eng.model_root = root
    yield eng
    stop_engine(eng)


def test_status_reports_backend_device_dtype(sao_engine):
    with sao_engine.client() as c:
        out = c.call("/segue/status", ["st", "detail", 1])
    assert out.final.args[2] == "sao-small"
    info = json.loads(out.final.args[5])
    assert info["device"] == "cpu" and info["dtype"] == "float32"


def test_generate_inpaint_continue_over_osc(sao_engine):
    with sao_engine.client() as c:
        gen = c.call("/segue/generate", request_args("g1", [0.25], {"bpm": 120.0, "prompt": "drums", "sr": 48000}),
                     timeout=300)
        assert gen.final.address == "/segue/done", gen.final.args
        y, sr = read_audio(gen.final.args[1])
        assert sr == 48000 and y.shape == (2, bars_to_samples(0.25, Grid(120.0), 48000))  # fits one window
        steps = [e.args[2] for e in gen.events if e.address == "/segue/progress"]
        assert sum("/8" in s for s in steps) >= 8, steps  # one progress reply per sampling step

        inp = c.call("/segue/inpaint", request_args("i1", [str(sao_engine.src), 2.0, 2.5], {"bpm": 120.0}),
                     timeout=300)
        assert inp.final.address == "/segue/done", inp.final.args
        y, sr = read_audio(inp.final.args[1])
        assert sr == 48000 and y.shape == (2, 24000) and np.all(np.isfinite(y))

        cont = c.call("/segue/continue", request_args("c1", [str(sao_engine.src), 6.0, 0.5],
                                                      {"bpm": 120.0, "sr": 44100, "variations": 2}), timeout=300)
        assert cont.final.address == "/segue/done", cont.final.args
        paths = [cont.final.args[1]] + cont.final.args[4:]
        assert len(paths) == 2
        for p in paths:
            y, sr = read_audio(p)
            assert sr == 44100 and y.shape == (2, 44100)
        # dsp stays available beside the neural backend
        d = c.call("/segue/inpaint", request_args("d1", [str(sao_engine.src), 2.0, 2.5],
                                                  {"bpm": 120.0, "backend": "dsp"}), timeout=60)
        assert d.final.address == "/segue/done", d.final.args
    assert sao_engine.alive()


def test_compile_failure_at_first_call_falls_back_to_eager(tmp_path):
    """Issue 8 fault 6: torch.compile fails lazily at the first call; the engine must serve eager."""
    root = write_serving_folders(tmp_path / "m")
    eng = start_engine(tmp_path, "--model", str(root / "model"), "--text-encoder", str(root / "t5"),
                       "--precision", "fp32", "--option", "compile=true", "--option",
                       "compile_backend=tests.sao.fixtures:raising_compile_backend", "--option", "warmup=false",
                       backend="sao-small")   # no warm-up: the first call is inside the request
    try:
        src = write_wav(eng.root / "src.wav", groove(2.0, 44100), 44100)
        with eng.client() as c:
            out = c.call("/segue/inpaint", request_args("k1", [str(src), 0.5, 0.75], {"bpm": 120.0}), timeout=300)
            assert out.final.address == "/segue/done", out.final.args
            y, sr = read_audio(out.final.args[1])
            assert y.shape == (2, 11025)
            info = json.loads(c.call("/segue/status", ["st", "detail", 1]).final.args[5])
        assert info["dit"] == "eager (compile failed)"
        assert eng.alive()
        assert "torch.compile failed" in eng.log.read_text()
    finally:
        stop_engine(eng)


def test_bad_model_folder_fails_at_start_with_a_clear_message(tmp_path):
    r = subprocess.run([sys.executable, "-m", "segue.engine.cli", "serve", "--backend", "sao-small", "--model",
                        str(tmp_path / "nowhere"), "--port", "0"], capture_output=True, text=True, timeout=120,
                       cwd=str(ROOT))
    assert r.returncode == 1 and "model" in r.stderr and "nowhere" in r.stderr
