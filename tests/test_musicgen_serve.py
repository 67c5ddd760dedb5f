"""`segue serve --backend musicgen-small --model <tiny folder>` as a real process: continue and
generate over OSC on 127.0.0.1 with exact lengths, progress per block of tokens, inpaint refused
with a clear error, status detail, and a bad model folder at start; `segue models` for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from segue.bridge.client import request_args  # noqa: E402
from conftest import ROOT, groove, read_audio, start_engine, stop_engine, write_wav  # noqa: E402
from segue.engine.timeline import Grid, bars_to_samples  # noqa: E402
from tests.musicgen.fixtures import write_tiny_folder  # noqa: E402


@pytest.fixture(scope="module")
def mg_engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("mg_serve")
    model = write_tiny_folder(root / "musicgen-small")
    eng = start_engine(root, "--model", str(model), "--precision", "fp32", "--option", "progress_tokens=20",
                       "--option", "threads=1",
                       backend="musicgen-small")
    eng.src = write_wav(root / "allowed" / "src.wav", groove(5.0, 44100, bpm=96.0), 44100)
    eng.model = model
    yield eng
    stop_engine(eng)


def test_status_reports_device_dtype_memory(mg_engine):
    with mg_engine.client() as c:
        out = c.call("/segue/status", ["st", "detail", 1])
    assert out.final.args[2] == "musicgen-small"
    info = json.loads(out.final.args[5])
    assert info["device"] == "cpu" and info["dtype"] == "float32" and info["rss_bytes"] > 0


def test_continue_and_generate_over_osc(mg_engine):
    before = mg_engine.src.read_bytes()
    with mg_engine.client() as c:
        cont = c.call("/segue/continue", request_args("c1", [str(mg_engine.src), 4.0, 1.5],
                                                      {"bpm": 96.0, "prompt": "funk drums", "variations": 2}),
                      timeout=300)
        assert cont.final.address == "/segue/done", cont.final.args
        paths = [cont.final.args[1]] + list(cont.final.args[4:])
        assert len(paths) == 2
        n = bars_to_samples(1.5, Grid(96.0), 44100)
        ys = []
        for p in paths:
            y, sr = read_audio(p)
            assert sr == 44100 and y.shape == (2, n) and np.all(np.isfinite(y))
            ys.append(y)
        assert not np.array_equal(ys[0], ys[1])
        steps = [e.args[2] for e in cont.events if e.address == "/segue/progress"]
        assert sum(s.startswith("tokens") for s in steps) >= 2 * (n // 882 // 20), steps   # per 20 tokens

        gen = c.call("/segue/generate", request_args("g1", [0.5], {"bpm": 120.0, "prompt": "house", "sr": 48000}),
                     timeout=300)
        assert gen.final.address == "/segue/done", gen.final.args
        y, sr = read_audio(gen.final.args[1])
        assert sr == 48000 and y.shape == (2, bars_to_samples(0.5, Grid(120.0), 48000))

        inp = c.call("/segue/inpaint", request_args("i1", [str(mg_engine.src), 1.0, 2.0], {"bpm": 96.0}), timeout=60)
        assert inp.final.address == "/segue/error" and inp.final.args[1] == "unsupported"
        assert "musicgen-small" in inp.final.args[2] and "inpaint" in inp.final.args[2]   # refused at submit
    assert mg_engine.src.read_bytes() == before            # the source file is never modified
    assert mg_engine.alive()


def test_bad_model_folder_fails_at_start_with_a_clear_message(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text('{"model_type": "musicgen"}')
    r = subprocess.run([sys.executable, "-m", "segue.engine.cli", "serve", "--backend", "musicgen-small", "--model",
                        str(tmp_path / "half"), "--port", "0"], capture_output=True, text=True, timeout=120,
                       cwd=str(ROOT))
    assert r.returncode == 1 and "model_invalid" in r.stderr and "model.safetensors" in r.stderr


def _models(*args, **env):
    e = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "segue.engine.models_cli", "models", *args],
                          capture_output=True, text=True, cwd=str(ROOT), env=e, timeout=300)


def test_models_check_list_and_pull(mg_engine, tmp_path):
    r = _models("check", "--backend", "musicgen-small", "--model", str(mg_engine.model))
    assert r.returncode == 0, r.stderr
    assert "CC-BY-NC-4.0" in r.stdout and "decoder" in r.stdout and r.stdout.strip().endswith("ok")
    r = _models("list", "--models-dir", str(mg_engine.model.parent), HF_HUB_CACHE=str(tmp_path / "hub"))
    assert r.returncode == 0 and str(mg_engine.model) in r.stdout and "facebook/musicgen-small" in r.stdout
    r = _models("pull", "musicgen-small", "--cache", str(tmp_path / "hub"))
    assert r.returncode == 1 and "error offline" in r.stderr
    assert r.stdout.startswith("licence:") and "CC-BY-NC-4.0" in r.stdout        # shown before any download
    r = _models("check", "--backend", "musicgen-small", "--model", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and "model_not_found" in r.stderr and "nowhere" in r.stderr
    r = _models("list", HF_HUB_CACHE=str(tmp_path / "hub"))
    assert r.returncode == 0 and "facebook/musicgen-small (musicgen-small)" in r.stdout and "not installed" in r.stdout
