"""`segue models check|pull|list` as real processes on a tiny checkpoint (no network)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from segue.engine.backends.sao_small.config import SaoConfig  # noqa: E402
from segue.engine.backends.sao_small.loading import SaoModel, export_official_state_dict  # noqa: E402
from tests.sao.fixtures import make_t5_folder, serving_config, write_model_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(*args, env_extra=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "segue.engine.models_cli", "models", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sao_cli")
    cfg = serving_config()
    model = SaoModel(SaoConfig.from_dict(cfg))
    write_model_folder(root / "model", cfg, export_official_state_dict(model))
    make_t5_folder(root / "model" / "t5-base", d_model=16)   # found beside the model
    return root


def test_check_prints_parts_and_succeeds(folders):
    r = run("check", "--model", str(folders / "model"))
    assert r.returncode == 0, r.stderr
    sizes = SaoModel(SaoConfig.from_dict(serving_config())).part_sizes()
    assert f"{sizes['dit']:,}" in r.stdout and f"{sizes['vae']:,}" in r.stdout and "T5 text encoder" in r.stdout
    assert "F32" in r.stdout and r.stdout.strip().endswith("ok")


def test_check_fails_with_named_key(folders, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_config.json").write_text((folders / "model" / "model_config.json").read_text())
    sd = load_file(str(folders / "model" / "model.safetensors"))
    sd.pop("conditioner.conditioners.seconds_total.embedder.embedding.1.bias")
    save_file(sd, str(bad / "model.safetensors"))
    r = run("check", "--model", str(bad), "--skip-text-encoder")
    assert r.returncode == 1
    assert "error model_invalid" in r.stderr and "seconds_total.embedder.embedding.1.bias" in r.stderr


def test_check_missing_folder(tmp_path):
    r = run("check", "--model", str(tmp_path / "none"))
    assert r.returncode == 1 and "model_not_found" in r.stderr


def test_list_shows_cache_and_folder(folders, tmp_path):
    cache = tmp_path / "hub"
    snap = cache / "models--stabilityai--stable-audio-open-small" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model_config.json").write_text("{}")
    (cache / "models--stabilityai--stable-audio-open-small" / "refs").mkdir()
    (cache / "models--stabilityai--stable-audio-open-small" / "refs" / "main").write_text("abc123")
    r = run("list", "--models-dir", str(folders), env_extra={"HF_HUB_CACHE": str(cache)})
    assert r.returncode == 0
    assert str(snap) in r.stdout and "model.safetensors" in r.stdout and "not installed" in r.stdout


def test_pull_offline_says_what_to_fetch(tmp_path):
    r = run("pull", "sao-small", "--cache", str(tmp_path / "hub"))
    assert r.returncode == 1
    assert "stabilityai/stable-audio-open-small" in r.stderr and str(tmp_path / "hub") in r.stderr


def test_check_takes_the_name_pull_takes(folders, tmp_path):
    # `segue models check sao-small` (as `pull sao-small`) was "unrecognized arguments"
    r = run("check", "sao-small", "--model", str(folders / "model"))
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
    r = run("check", "sa3-small-sfx", env_extra={"HF_HOME": str(tmp_path / "hf")})
    assert r.returncode == 1 and "`segue models pull sa3-small-sfx`" in r.stderr, r.stderr
    for argv in (["check", "nope"], ["check", "sa3-small-sfx", "--backend", "sao-small"]):
        r = run(*argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
