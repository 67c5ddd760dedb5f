"""A full-size Stable Audio 3 small checkpoint, written by the official code (stable-audio-tools 0.0.20,
in its own process) from the reconstructed config with its own initialisation and key layout, loads
strictly into ours: 685 tensors, 459,130,896 DiT and ~108.2M SAME-S parameters.

~2.3 GB on disk in a tmp dir (never committed), ~5 GB of memory at peak in the oracle process.
"""

from __future__ import annotations

import gc
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("transformers")

from tests.sa3.fixtures import T5_SUBFOLDER, make_t5gemma_folder, run_oracle, sat020_available  # noqa: E402

if not sat020_available():
    pytest.skip("stable-audio-tools 0.0.20 is the test-only oracle that writes the checkpoint",
                allow_module_level=True)

from segue.engine.backends.sa3_small.config import sa3_small_config  # noqa: E402
from segue.engine.backends.sa3_small.loading import load_sa3  # noqa: E402


def test_full_size_official_checkpoint_loads_strictly(tmp_path):
    from safetensors import safe_open

    folder = tmp_path / "sa3-small"
    make_t5gemma_folder(folder / T5_SUBFOLDER)
    info = run_oracle(folder, sa3_small_config(), seed=0, randomize=False)
    assert info["tensors"] == 685
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        dit_params = sum(math.prod(f.get_slice(k).get_shape()) for k in keys if k.startswith("model.model."))
        qkv = f.get_tensor("model.model.transformer.layers.7.self_attn.to_qkv.weight")[:4, :4].clone()
        g = f.get_tensor("pretransform.model.decoder.layers.3.mapping.weight_g")
        v = f.get_tensor("pretransform.model.decoder.layers.3.mapping.weight_v")
    assert dit_params == 459_130_896

    model = load_sa3(folder, dtype=torch.bfloat16)
    sizes = model.part_sizes()
    assert sizes["dit"] == 459_130_896
    assert 108.2e6 <= sizes["autoencoder"] + 768 + 512 < 108.3e6    # + the weight-norm gains, fused here
    assert model.dit.transformer.layers[7].self_attn.to_qkv.weight.dtype == torch.bfloat16
    assert model.autoencoder.decoder.resampler.mapping.weight.dtype == torch.float32
    torch.testing.assert_close(model.dit.transformer.layers[7].self_attn.to_qkv.weight[:4, :4].float(), qkv,
                               atol=1e-2, rtol=1e-2)
    fused = g * v / v.reshape(v.shape[0], -1).norm(dim=1)[:, None, None]
    torch.testing.assert_close(model.autoencoder.decoder.resampler.mapping.weight, fused)
    del model
    gc.collect()
