"""sa3-small parity with the official implementation, fp32, 1e-4 relative.

The oracle is stable-audio-tools 0.0.20 (the PyPI twin of the official Stability-AI/stable-audio-3
code), installed test-only in its own `--target` folder and run in its own process
(tests/sa3/oracle.py). It builds a tiny random-init model from a config in the official layout
(zero-initialised layers re-randomised), writes it as model.safetensors with its own key names,
and records outputs; our strict loader reads that folder and we compare: DiT forward (plain,
with the inpainting conditioning and padding mask, with APG and plain guidance), SAME encode
and decode (noise off on both sides, and aligned), the T5Gemma and seconds conditioners, and
whole 8-step inpaint / continuation / guided / plain-generate trajectories through the official
`generate_diffusion_cond_inpaint` from the same seed.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("transformers")

from tests.sa3.fixtures import (T5_SUBFOLDER, make_t5gemma_folder, run_oracle, sat020_available,  # noqa: E402
                                tiny_config)

if not sat020_available():
    pytest.skip("stable-audio-tools 0.0.20 (--target <venv>/sat-0.0.20) with einops, einops-exts and "
                "alias-free-torch is the test-only oracle: see scripts/test.sh", allow_module_level=True)

from engine.backends.sa3_small import canvas as cv  # noqa: E402
from engine.backends.sa3_small.loading import load_sa3  # noqa: E402
from engine.backends.sa3_small.sampler import build_schedule, logsnr_schedule  # noqa: E402

TOL = 1e-4
PROMPT = "drum loop 120 bpm"


def rel(a, b) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sa3_tiny") / "model"
    make_t5gemma_folder(folder / T5_SUBFOLDER, seed=1)
    info = run_oracle(folder, tiny_config(), seed=3, refs=True)
    refs = torch.load(folder / "refs.pt", weights_only=False)
    model = load_sa3(folder)
    assert info["tensors"] == len(model.state_dict()) + 2     # + the weight-norm pairs, fused here
    return model, refs


# ------------------------------------------------------------------ DiT

@pytest.mark.parametrize("case", ["plain", "local", "cfg_apg", "cfg_plain"])
def test_dit_forward_matches(pair, case):
    model, R = pair
    d = R["dit_in"]
    args = {"plain": (None, None, 1.0, 1.0), "local": (d["local"], d["keep"], 1.0, 1.0),
            "cfg_apg": (d["local"], d["keep"], 3.0, 1.0), "cfg_plain": (d["local"], None, 3.0, 0.0)}[case]
    out = model.dit(d["x"], d["t"], d["cross"], d["glob"], args[0], args[1], cfg_scale=args[2], apg_scale=args[3])
    assert rel(out, R[f"dit_{case}"]) < TOL


def test_dit_conditioning_paths_matter(pair):
    """The references differ from one another: local conditioning, padding mask and guidance all act."""
    _, R = pair
    assert rel(R["dit_local"], R["dit_plain"]) > 1e-2
    assert rel(R["dit_cfg_apg"], R["dit_local"]) > 1e-2
    assert rel(R["dit_cfg_plain"], R["dit_cfg_apg"]) > 1e-3


def test_dit_perturbed_weight_breaks_parity(pair):
    """The comparison can fail: a small change in one local-embedding weight is seen."""
    model, R = pair
    d = R["dit_in"]
    w = model.dit.transformer.layers[1].to_local_embed[2].weight
    saved = w.clone()
    try:
        w.add_(0.05 * torch.randn_like(w))
        assert rel(model.dit(d["x"], d["t"], d["cross"], d["glob"], d["local"], d["keep"]), R["dit_local"]) > TOL
    finally:
        w.copy_(saved)


# ------------------------------------------------------------------ SAME-S

def test_same_encode_matches(pair):
    model, R = pair
    out = model.encode(R["same_in"]["audio"])
    assert out.shape == R["same_encode"].shape == (2, 8, 8)     # 3 x 8192 + 1000 samples -> 8 frames (even)
    assert rel(out, R["same_encode"]) < TOL


def test_same_decode_without_noise_matches(pair):
    model, R = pair
    out = model.decode(R["same_in"]["z"], noise=False)
    assert out.shape == R["same_decode_quiet"].shape == (2, 2, 6 * 4096)
    assert rel(out, R["same_decode_quiet"]) < TOL


def test_same_decode_noise_aligned_matches(pair):
    """The official decoder draws SoftNorm noise then new-token noise from the global RNG; ours from a
    generator seeded the same way."""
    model, R = pair
    z = R["same_in"]["z"]
    out = model.decode(z, generator=torch.Generator().manual_seed(77))
    assert rel(out, R["same_decode_noisy"]) < TOL
    assert rel(R["same_decode_noisy"], R["same_decode_quiet"]) > 1e-3          # the noise is really there
    other = model.decode(z, generator=torch.Generator().manual_seed(78))
    assert rel(other, R["same_decode_noisy"]) > 1e-3


def test_same_chunked_encode_and_decode_match(pair):
    """With "chunked": true in the config, long inputs go through 128-frame windows overlapping by 32."""
    import dataclasses

    model, R = pair
    ae = model.autoencoder
    plain_cfg = ae.cfg
    ae.cfg = dataclasses.replace(plain_cfg, chunked=True)
    try:
        enc = model.encode(R["same_chunked_in"]["audio"])
        dec = model.decode(R["same_chunked_in"]["z"], generator=torch.Generator().manual_seed(78))
    finally:
        ae.cfg = plain_cfg
    assert enc.shape == R["same_chunked_encode"].shape and rel(enc, R["same_chunked_encode"]) < TOL
    assert dec.shape == R["same_chunked_decode"].shape and rel(dec, R["same_chunked_decode"]) < TOL
    whole = model.decode(R["same_chunked_in"]["z"], generator=torch.Generator().manual_seed(78))
    assert rel(whole, R["same_chunked_decode"]) > TOL                  # the windows really differ


# ------------------------------------------------------------------ conditioners

def test_t5gemma_prompt_conditioner_matches(pair):
    model, R = pair
    emb, mask = model.prompt(R["cond_in"]["prompts"])
    assert emb.shape == R["prompt_emb"].shape == (3, 256, 768)
    assert torch.equal(mask, R["prompt_mask"]) and not bool(mask.all())       # padded to 256 tokens
    assert rel(emb, R["prompt_emb"]) < TOL
    pad = model.prompt.padding_embedding
    assert torch.equal(emb[0, -1], pad)                                        # learned padding embedding


def test_seconds_conditioner_matches(pair):
    model, R = pair
    out = model.seconds(R["cond_in"]["seconds"])                               # includes both clamps
    assert out.shape == R["seconds_emb"].shape == (6, 1, 768)
    assert rel(out, R["seconds_emb"]) < TOL


# ------------------------------------------------------------------ whole trajectories

def test_schedule_is_logsnr_shift():
    want = [1, .99438, .98448, .95791, .89090, .74555, .51250, .27389, 0]
    assert torch.allclose(logsnr_schedule(8), torch.tensor(want), atol=2e-5)


def test_every_distribution_shift_matches(pair):
    """The config may select another sampling shift (the official TensorRT script uses "full")."""
    _, R = pair
    ref = R["schedules"]
    n = 0
    for i, (kind, _, args) in enumerate(R["shift_cases"]):
        for seq, sigma_max in ((54, 1.0), (1292, 1.0), (300, 0.7)):
            want = ref[(i, seq, sigma_max)]
            got = build_schedule(8, sigma_max, kind, seq, **args)
            assert torch.allclose(got, want, atol=1e-6, rtol=1e-5), (kind, args, seq, sigma_max)
            n += 1
    assert n == 18


@pytest.mark.parametrize("name", ["inpaint", "continue", "inpaint_cfg", "generate"])
def test_trajectory_matches_official_generate(pair, name):
    """8 ping-pong steps from the same seed: canvas, mask, padding mask, noise order, decode, zeroing."""
    model, R = pair
    k = R["traj_cases"][name]
    sec = k["seconds"]
    samples = cv.canvas_samples(sec, latent_align=model.cfg.latent_align, max_samples=model.cfg.sample_size)
    frames = cv.latent_count(samples)
    assert frames % 2 == 0 and frames == R[f"traj_{name}_latents"].shape[-1]
    keep = cv.padding_mask(sec, frames)
    cond = model.condition([PROMPT], [sec])
    mask = masked = None
    if k["audio"]:
        z = model.encode(cv.fit_to_canvas(R["traj_in"]["src"], samples)[None])
        mask = cv.latent_mask(cv.seconds_regions([(k["start"], k["end"])]), frames,
                              end_sample=cv.seconds_to_samples(sec))[None]
        masked = z * mask[:, None]
    g = torch.Generator().manual_seed(k["seed"])
    steps = []
    lat = model.inpaint(cond, mask, masked, keep, steps=8, cfg_scale=k["cfg"], generator=g, frames=frames,
                        callback=lambda i, n: steps.append((i, n)))
    audio = model.decode_canvas(lat, keep, generator=g)
    assert steps == [(i, 8) for i in range(1, 9)]
    assert rel(lat, R[f"traj_{name}_latents"]) < TOL
    assert audio.shape == R[f"traj_{name}_audio"].shape
    assert rel(audio, R[f"traj_{name}_audio"]) < TOL


def test_trajectory_depends_on_the_seed(pair):
    model, R = pair
    k = R["traj_cases"]["generate"]
    frames = R["traj_generate_latents"].shape[-1]
    cond = model.condition([PROMPT], [k["seconds"]])
    lat = model.inpaint(cond, None, None, cv.padding_mask(k["seconds"], frames),
                        generator=torch.Generator().manual_seed(k["seed"] + 1), frames=frames)
    assert rel(lat, R["traj_generate_latents"]) > 1e-2
