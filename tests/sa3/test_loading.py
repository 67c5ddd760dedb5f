"""Strict loading of Stable Audio 3 small folders: every wrong key, a checkpoint of another model and a
missing T5Gemma folder are clear SegueErrors naming what is wrong (the official loader skips them)."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

from engine.backends.sa3_small.config import Sa3Config  # noqa: E402
from engine.backends.sa3_small.loading import export_official_state_dict, load_sa3  # noqa: E402
from engine.errors import SegueError  # noqa: E402
from tests.sa3.fixtures import T5_SUBFOLDER, tiny_config, write_tiny_sa3_folder  # noqa: E402

KEY = "model.model.transformer.layers.1.to_local_embed.0.weight"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_sa3_folder(tmp_path_factory.mktemp("sa3") / "model", seed=2)


@pytest.fixture
def folder(tiny, tmp_path):
    return shutil.copytree(tiny, tmp_path / "model")


def _edit_weights(folder, fn):
    path = folder / "model.safetensors"
    sd = load_file(str(path))
    fn(sd)
    save_file(sd, str(path))


def _error(folder, **kw) -> SegueError:
    with pytest.raises(SegueError) as e:
        load_sa3(folder, **kw)
    return e.value


def test_tiny_folder_round_trips_the_official_layout(folder):
    model = load_sa3(folder)
    written = load_file(str(folder / "model.safetensors"))
    again = export_official_state_dict(model)
    assert set(again) == set(written)
    for k in written:
        torch.testing.assert_close(again[k], written[k], rtol=1e-5, atol=1e-6)
    assert model.prompt.encoder is not None and not model.training


def test_missing_key_is_named(folder):
    _edit_weights(folder, lambda sd: sd.pop(KEY))
    err = _error(folder)
    assert err.code == "model_invalid" and "1 missing key(s)" in err.message and KEY in err.message


def test_unexpected_key_is_named(folder):
    extra = "model.model.transformer.layers.0.self_attn.lora_A"
    _edit_weights(folder, lambda sd: sd.__setitem__(extra, torch.zeros(3)))
    err = _error(folder)
    assert err.code == "model_invalid" and "unexpected" in err.message and extra in err.message


def test_mis_shaped_key_is_named_with_both_shapes(folder):
    _edit_weights(folder, lambda sd: sd.__setitem__(KEY, torch.zeros(128, 10)))
    err = _error(folder)
    assert err.code == "model_invalid" and KEY in err.message
    assert "(128, 10)" in err.message and "(128, 9)" in err.message


def test_config_and_checkpoint_disagree(folder):
    cfg = json.loads((folder / "model_config.json").read_text())
    cfg["model"]["diffusion"]["config"]["depth"] = 3          # the checkpoint has 2 blocks
    (folder / "model_config.json").write_text(json.dumps(cfg))
    err = _error(folder)
    assert "missing key(s)" in err.message and "model.model.transformer.layers.2." in err.message


def test_stable_audio_open_folder_is_refused(tmp_path):
    sao = pytest.importorskip("tests.sao.fixtures")
    root = sao.write_serving_folders(tmp_path)
    err = _error(root / "model")
    assert err.code == "model_invalid" and "not a Stable Audio 3 model" in err.message


def test_stable_audio_open_checkpoint_with_an_sa3_config_is_refused(folder, tmp_path):
    sao = pytest.importorskip("tests.sao.fixtures")
    root = sao.write_serving_folders(tmp_path / "sao")
    shutil.copy(root / "model" / "model.safetensors", folder / "model.safetensors")
    err = _error(folder)
    assert err.code == "model_invalid" and "not an SA3 checkpoint" in err.message and "Stable Audio Open" in err.message


def test_missing_t5gemma_folder_is_named(folder):
    shutil.rmtree(folder / T5_SUBFOLDER)
    err = _error(folder)
    assert err.code == "text_encoder_missing" and T5_SUBFOLDER in err.message
    assert load_sa3(folder, text_encoder=False).prompt.encoder is None   # the rest still loads


def test_missing_t5gemma_file_is_named(folder):
    (folder / T5_SUBFOLDER / "tokenizer.json").unlink()
    err = _error(folder)
    assert err.code == "text_encoder_missing" and "tokenizer.json" in err.message


@pytest.mark.parametrize("what, expect", [("folder", "model_not_found"), ("config", "model_not_found"),
                                          ("weights", "model_not_found"), ("json", "model_invalid")])
def test_missing_or_broken_files(folder, what, expect):
    if what == "folder":
        target = folder / "nope"
    else:
        target = folder
        {"config": lambda: (folder / "model_config.json").unlink(),
         "weights": lambda: (folder / "model.safetensors").unlink(),
         "json": lambda: (folder / "model_config.json").write_text("{not json")}[what]()
    assert _error(target).code == expect


@pytest.mark.parametrize("path, value, named", [
    (("model", "diffusion", "config", "norm_type"), "layer_norm", "norm_type"),
    (("model", "diffusion", "config", "global_cond_type"), "prepend", "global_cond_type"),
    (("model", "diffusion", "diffusion_objective"), "v", "diffusion_objective"),
    (("model", "pretransform", "config", "bottleneck", "type"), "vae", "bottleneck"),
    (("model", "diffusion", "sampling_distribution_shift_options"), {"type": "cosine"}, "sampling_distribution_shift"),
    (("model_type",), "diffusion_uncond", "model_type"),
])
def test_unsupported_config_is_named(path, value, named):
    cfg = tiny_config()
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(SegueError) as e:
        Sa3Config.from_dict(cfg)
    assert e.value.code == "model_invalid" and named in e.value.message


def test_missing_config_field_is_a_clear_error():
    cfg = tiny_config()
    del cfg["model"]["diffusion"]["config"]["embed_dim"]
    with pytest.raises(SegueError) as e:
        Sa3Config.from_dict(cfg)
    assert e.value.code == "model_invalid" and "embed_dim" in e.value.message


def test_model_ckpt_is_read_when_there_is_no_safetensors(folder):
    """The official loader's fallback: model.ckpt holding {"state_dict": ...}."""
    ref = load_sa3(folder, text_encoder=False)
    sd = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save({"state_dict": sd}, str(folder / "model.ckpt"))
    got = load_sa3(folder, text_encoder=False)
    for (k, a), (_, b) in zip(ref.state_dict().items(), got.state_dict().items()):
        assert torch.equal(a, b), k
    sd.pop(KEY)
    torch.save({"state_dict": sd}, str(folder / "model.ckpt"))
    assert KEY in _error(folder, text_encoder=False).message
