"""neural/hub.py: folders, cache folders and repo ids found through huggingface_hub's cache functions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from segue.engine.backends.neural import hub  # noqa: E402
from segue.engine.errors import SegueError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def fake_cache(root: Path, repo: str, files: dict, rev: str = "abc123", ref: bool = True) -> Path:
    folder = root / ("models--" + repo.replace("/", "--"))
    snap = folder / "snapshots" / rev
    snap.mkdir(parents=True)
    for name, text in files.items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_text(text)
    if ref:
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text(rev)
    return snap


def test_folder_repo_id_and_cache_folder(tmp_path):
    snap = fake_cache(tmp_path / "hub", "org/model", {"model_config.json": "{}", "t5gemma-b-b-ul2/config.json": "{}"})
    assert hub.locate("org/model", "x/y", need=["model_config.json"], cache_dir=tmp_path / "hub") == snap
    assert hub.locate(str(snap.parents[1]), "x/y") == snap                 # models--org--model folder
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model_config.json").write_text("{}")
    assert hub.locate(str(plain), "x/y", need=["model_config.json"]) == plain
    assert hub.locate(None, "org/model", cache_dir=tmp_path / "hub") == snap


def test_without_refs_the_newest_revision(tmp_path):
    snap = fake_cache(tmp_path / "hub", "org/model", {"model_config.json": "{}"}, ref=False)
    assert hub.cached_snapshot("org/model", tmp_path / "hub") == snap


def test_clear_errors(tmp_path):
    with pytest.raises(SegueError) as e:
        hub.locate("org/absent", "org/absent", cache_dir=tmp_path, pull="segue models pull sa3-small-music")
    assert e.value.code == "model_not_found" and "segue models pull sa3-small-music" in e.value.message
    with pytest.raises(SegueError) as e:
        hub.locate(str(tmp_path / "nowhere"), "a/b", code="text_encoder_missing")
    assert e.value.code == "text_encoder_missing" and "nowhere" in e.value.message
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(SegueError) as e:
        hub.locate(str(tmp_path / "half"), "a/b", need=["config.json", ("model.safetensors", "model.ckpt")])
    assert "model.safetensors or model.ckpt" in e.value.message and "config.json" not in e.value.message.split(":")[-1]
    assert "accept the Stability AI Community License" in hub.gated_help("a/b", "Stability AI Community License")


def test_hf_home_is_honoured_in_a_fresh_process(tmp_path):
    """HF_HOME (read by huggingface_hub itself at import) decides where a repo id is looked up."""
    snap = fake_cache(tmp_path / "home" / "hub", "org/model", {"model_config.json": "{}"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    code = "from segue.engine.backends.neural import hub; print(hub.locate('org/model', 'x/y'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(snap)


def test_pull_offline_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(SegueError) as e:
        hub.pull("org/absent", ["model_config.json"], cache_dir=tmp_path / "hub", licence="L")
    assert e.value.code in ("offline", "gated") and str(tmp_path / "hub") in e.value.message or "org/absent" in e.value.message


def test_a_file_given_as_the_model_folder_is_called_a_file(tmp_path):
    # `segue models check --model /etc/passwd` said the folder "does not exist"
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"\0")
    with pytest.raises(SegueError) as e:
        hub.locate(str(f), "a/b")
    assert e.value.code == "model_not_found" and "is a file, not a folder" in e.value.message
