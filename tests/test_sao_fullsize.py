"""A full-size Stable Audio Open Small checkpoint (497M random parameters, written by the
official stable-audio-tools classes in fp16 with the official key layout) loads strictly.

~1 GB on disk in a tmp dir, ~3.4 GB of memory at peak, ~15 s on 2 cores: cheap enough
to run in CI unmarked.
"""

from __future__ import annotations

import gc

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from tests.sao.fixtures import build_sat_model, sat_available, write_model_folder  # noqa: E402

if not sat_available():
    pytest.skip("stable-audio-tools 0.0.19 is the test-only oracle that writes the checkpoint", allow_module_level=True)

from segue.engine.backends.sao_small.config import sao_small_config  # noqa: E402
from segue.engine.backends.sao_small.loading import load_model  # noqa: E402


def test_full_size_official_layout_loads_strictly(tmp_path):
    cfg = sao_small_config()
    sat = build_sat_model(cfg, randomize=False)         # SAT's own init; the VAE is fp16 (model_half)
    state = {k: v.half() for k, v in sat.state_dict().items()}
    assert len(state) == 750 and sum(v.numel() for v in state.values()) == 497_239_458
    probe_key = "model.model.transformer.layers.7.self_attn.to_qkv.weight"
    probe = state[probe_key][:4, :4].float().clone()
    wn_g = state["pretransform.model.decoder.layers.1.layers.1.weight_g"].float()
    wn_v = state["pretransform.model.decoder.layers.1.layers.1.weight_v"].float()
    del sat
    gc.collect()
    folder = write_model_folder(tmp_path / "sao", cfg, state)
    del state
    gc.collect()

    model, meta = load_model(folder, dit_dtype=torch.bfloat16, vae_dtype=torch.float32)
    sizes = model.part_sizes()
    # buffers (LayerNorm beta, rotary inv_freq) count as in the checkpoint; weight norm is fused
    assert sizes["dit"] > 3.4e8 and sizes["seconds"] == 257 * 768 + 768 + 128
    assert meta["stored_dtypes"] == ["F16"]
    layer = model.dit.transformer.layers[7].self_attn.to_qkv.weight
    assert layer.dtype == torch.bfloat16
    torch.testing.assert_close(layer[:4, :4].float(), probe, atol=1e-2, rtol=1e-2)
    # ConvTranspose weight (in, out, k): g is per input channel
    fused = wn_g * wn_v / wn_v.reshape(wn_v.shape[0], -1).norm(dim=1)[:, None, None]
    torch.testing.assert_close(model.vae.decoder.layers[1].layers[1].weight, fused, atol=1e-3, rtol=1e-3)
