"""sao-small parity with the official stable-audio-tools 0.0.19 (test-only oracle), fp32, 1e-4 relative.

Tiny random-init reference models are built with SAT's own classes, saved under
the official key prefixes, loaded by our strict loader, and compared output for
output: DiT (with and without CFG), VAE encode mean (and sampled), VAE decode,
the seconds conditioner, and a whole 8-step ping-pong trajectory.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests.sao.fixtures import build_sat_model, install_sat_stubs, sat_available, tiny_config, write_model_folder  # noqa: E402

if not sat_available():
    pytest.skip("stable-audio-tools 0.0.19 (with --no-deps) and einops are needed as the oracle", allow_module_level=True)

from segue.engine.backends.sao_small.loading import load_model  # noqa: E402
from segue.engine.backends.sao_small.sampler import rf_schedule, sample_pingpong  # noqa: E402

TOL = 1e-4


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    cfg = tiny_config()
    sat = build_sat_model(cfg, seed=3)
    folder = write_model_folder(tmp_path_factory.mktemp("tiny_sao"), cfg, sat.state_dict())
    ours, _ = load_model(folder)
    return sat, ours


def _inputs(seed=0, b=2, n=20):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 8, n, generator=g), torch.tensor([0.9, 0.3][:b]),
            torch.randn(b, 7, 16, generator=g), torch.randn(b, 16, generator=g))


def test_dit_forward_matches(pair):
    sat, ours = pair
    x, t, cross, glob = _inputs()
    ref = sat.model(x, t, cross_attn_cond=cross, global_cond=glob, cfg_scale=1.0)
    out = ours.dit(x, t, cross, glob)
    assert ref.abs().max() > 1e-3 and rel(ref, x) > 0.1      # the network does something
    assert rel(out, ref) < TOL
    # cross-attention keys/values computed once per trajectory (DiT.prepare): the same network
    assert rel(ours.dit(x, t, cross, glob, prepared=ours.dit.prepare(cross)), ref) < TOL


def test_dit_cfg_matches(pair):
    sat, ours = pair
    x, t, cross, glob = _inputs(1)
    ref = sat.model(x, t, cross_attn_cond=cross, global_cond=glob, cfg_scale=4.0)
    plain = sat.model(x, t, cross_attn_cond=cross, global_cond=glob, cfg_scale=1.0)
    assert rel(ref, plain) > 1e-2                               # guidance changes the output
    assert rel(ours.dit(x, t, cross, glob, cfg_scale=4.0), ref) < TOL
    assert rel(ours.dit(x, t, cross, glob, cfg_scale=4.0, prepared=ours.dit.prepare(cross, 4.0)), ref) < TOL


def test_dit_changes_with_a_weight(pair):
    """The comparison can fail: a perturbed block weight breaks parity."""
    sat, ours = pair
    x, t, cross, glob = _inputs(2)
    ref = sat.model(x, t, cross_attn_cond=cross, global_cond=glob, cfg_scale=1.0)
    w = ours.dit.transformer.layers[1].ff.proj_out.weight
    saved = w.clone()
    try:
        w.add_(0.05 * torch.randn_like(w))
        assert rel(ours.dit(x, t, cross, glob), ref) > TOL
    finally:
        w.copy_(saved)


def test_vae_encode_mean_and_sample_match(pair):
    sat, ours = pair
    audio = torch.randn(2, 2, 8 * 30, generator=torch.Generator().manual_seed(4)) * 0.3
    h = sat.pretransform.model.encoder(audio)
    mean_ref = h.chunk(2, dim=1)[0]
    mean, _ = ours.vae.encode_mean_scale(audio)
    assert rel(mean, mean_ref) < TOL
    torch.manual_seed(11)
    z_ref = sat.pretransform.encode(audio)            # SAT samples with the global RNG
    torch.manual_seed(11)
    z = ours.vae.encode(audio, sample=True)
    assert rel(z, z_ref) < TOL and rel(z, mean_ref) > 1e-3


def test_vae_decode_matches(pair):
    sat, ours = pair
    z = torch.randn(2, 8, 30, generator=torch.Generator().manual_seed(5))
    ref = sat.pretransform.decode(z)
    out = ours.vae.decode(z)
    assert out.shape == ref.shape == (2, 2, 240)
    assert rel(out, ref) < TOL


def test_number_conditioner_matches(pair):
    sat, ours = pair
    secs = [0.0, 3.0, 11.89, 256.0, 300.0, -5.0]       # includes both clamps
    ref = sat.conditioner.conditioners.seconds_total(secs, "cpu")[0]
    out = ours.seconds(secs)
    assert out.shape == ref.shape == (6, 1, 16)
    assert rel(out, ref) < TOL


def test_schedule_is_sat_0_0_19():
    t = rf_schedule(8)
    want = [1, .99331, .98201, .95257, .88080, .73106, .5, .26894, 0]
    assert torch.allclose(t, torch.tensor(want), atol=2e-5)


@pytest.mark.parametrize("cfg_scale", [1.0, 3.0])
def test_pingpong_trajectory_matches(pair, cfg_scale):
    """8 steps from the same seed: SAT generate_diffusion_cond vs our sampler + decoder."""
    install_sat_stubs()
    from stable_audio_tools.inference.generation import generate_diffusion_cond

    sat, ours = pair
    g = torch.Generator().manual_seed(9)
    prompt = torch.randn(1, 6, 16, generator=g)
    prompt[:, 4:] = 0                                    # padded T5 positions are zeros
    seconds = [5.0]
    conditioning = {"prompt": (prompt, torch.ones(1, 6)),
                    "seconds_total": sat.conditioner.conditioners.seconds_total(seconds, "cpu")}
    ref_latents = generate_diffusion_cond(sat, steps=8, cfg_scale=cfg_scale, conditioning_tensors=conditioning,
                                          sample_size=8 * 32, seed=1234, device="cpu", sampler_type="pingpong",
                                          return_latents=True)
    ref_audio = sat.pretransform.decode(ref_latents)

    sec = ours.seconds(seconds)
    cross, glob = torch.cat([prompt, sec], dim=1), sec[:, 0]
    torch.manual_seed(1234)
    noise = torch.randn(1, 8, 32)
    steps = []
    lat = sample_pingpong(lambda x, t: ours.dit(x, t, cross, glob, cfg_scale=cfg_scale), noise, rf_schedule(8),
                          callback=lambda k, n: steps.append((k, n)))
    assert steps == [(k, 8) for k in range(1, 9)]
    assert rel(lat, ref_latents) < TOL
    assert rel(ours.vae.decode(lat), ref_audio) < TOL
