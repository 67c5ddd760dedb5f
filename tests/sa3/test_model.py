"""SA3Model operations the backend relies on, on the tiny official-layout folder (no oracle needed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("transformers")

from engine.backends.sa3_small import canvas as cv  # noqa: E402
from engine.backends.sa3_small.loading import load_sa3  # noqa: E402
from engine.errors import Cancelled  # noqa: E402
from tests.sa3.fixtures import write_tiny_sa3_folder  # noqa: E402

SECONDS = 3.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_sa3_folder(tmp_path_factory.mktemp("sa3m") / "model", seed=4)


@pytest.fixture(scope="module")
def model(folder):
    return load_sa3(folder)


@pytest.fixture(scope="module")
def canvas(model):
    frames = cv.latent_count(cv.canvas_samples(SECONDS))
    src = torch.sin(torch.arange(frames * 4096) / 20.0)[None].repeat(2, 1)[None] * 0.3
    z = model.encode(src)
    mask = cv.latent_mask(cv.seconds_regions([(1.0, 1.5)]), frames, end_sample=cv.seconds_to_samples(SECONDS))
    return frames, z, mask[None], cv.padding_mask(SECONDS, frames)


def rel(a, b):
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def test_prepared_velocity_equals_the_plain_one(model, canvas):
    frames, z, mask, keep = canvas
    cond = model.condition(["drum loop"], [SECONDS])
    x = torch.randn(1, 8, frames, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.7])
    for cfg in (1.0, 2.5):
        plain = model.velocity(x, t, cond, mask, z * mask, keep, cfg_scale=cfg)
        prep = model.prepare(cond, mask, z * mask, frames, cfg_scale=cfg)
        assert torch.equal(model.velocity(x, t, cond, keep=keep, cfg_scale=cfg, prepared=prep), plain)


def test_trajectory_is_deterministic_per_generator_and_batches_share_the_source(model, canvas):
    frames, z, mask, keep = canvas
    cond = model.condition(["drum loop"], [SECONDS]).repeat(2)
    run = lambda seed: model.inpaint(cond, mask, z * mask, keep.expand(2, -1),  # noqa: E731
                                     generator=torch.Generator().manual_seed(seed), frames=frames)
    a, b, c = run(1), run(1), run(2)
    assert a.shape == (2, 8, frames) and torch.equal(a, b) and rel(a, c) > 1e-2
    assert rel(a[0], a[1]) > 1e-2                                    # two variations, two noises


def test_callback_can_cancel_between_steps(model, canvas):
    frames, z, mask, keep = canvas
    cond = model.condition(["drum loop"], [SECONDS])
    seen = []

    def cb(i, n):
        seen.append(i)
        if i == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        model.inpaint(cond, mask, z * mask, keep, generator=torch.Generator().manual_seed(0), frames=frames, callback=cb)
    assert seen == [1, 2, 3]


def test_bf16_dit_tracks_fp32(folder, model, canvas):
    """One velocity in bf16 stays within ~1% RMS of fp32 at every noise level, t = 0.994 included
    (rounding t itself to bf16 before the timestep features, as the official code does, gave 13%)."""
    frames, z, mask, keep = canvas
    low = load_sa3(folder, dtype=torch.bfloat16, text_encoder=False)
    emb, _ = model.prompt(["drum loop"])
    c32, c16 = model.condition_embeddings(emb, [SECONDS]), low.condition_embeddings(emb, [SECONDS])
    x = torch.randn(1, 8, frames, generator=torch.Generator().manual_seed(5))
    for t in (0.99438, 0.5, 0.1):
        t = torch.tensor([t])
        a = model.velocity(x, t, c32, mask, z * mask, keep)
        b = low.velocity(x, t, c16, mask, z * mask, keep)
        rms = float((b.float() - a).pow(2).mean().sqrt() / a.pow(2).mean().sqrt())
        assert b.dtype == torch.bfloat16 and rms < 0.03, (float(t), rms)


def test_noise_is_the_same_at_every_precision(folder, model, canvas):
    """Drawn in fp32 and cast: a seed means the same starting noise and step noise in bf16."""
    frames, z, mask, keep = canvas
    low = load_sa3(folder, dtype=torch.bfloat16, text_encoder=False)
    emb, _ = model.prompt(["drum loop"])
    seen = {}
    for name, m in (("fp32", model), ("bf16", low)):
        zero = lambda x, t: torch.zeros_like(x)  # noqa: E731  - isolates the noise path
        from engine.backends.sa3_small.sampler import sample_pingpong

        x0 = torch.randn(1, 8, frames, generator=torch.Generator().manual_seed(9)).to(m.dit.dtype)
        seen[name] = sample_pingpong(zero, x0, m.schedule(8, SECONDS), generator=torch.Generator().manual_seed(9))
    assert torch.allclose(seen["bf16"].float(), seen["fp32"], atol=2e-2, rtol=2e-2)


def test_decode_noise_is_reproducible_or_off(model, canvas):
    frames, z, _, keep = canvas
    q1, q2 = model.decode(z, noise=False), model.decode(z, noise=False)
    n1 = model.decode(z, generator=torch.Generator().manual_seed(3))
    n2 = model.decode(z, generator=torch.Generator().manual_seed(3))
    assert torch.equal(q1, q2) and torch.equal(n1, n2) and rel(n1, q1) > 1e-4
    audio = model.decode_canvas(z, keep, noise=False)
    valid = int(keep.sum()) * 4096
    assert audio.shape == (1, 2, frames * 4096) and not audio[..., valid:].any() and audio[..., :valid].abs().max() > 0
