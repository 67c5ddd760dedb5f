"""sao-small backend on a tiny random checkpoint and a stand-in T5: protocol-exact outputs,
joins, seeds, caches, cancellation, and clear errors for bad model folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from segue.engine.backends import create  # noqa: E402
from segue.engine.backends.base import BackendConfig, JobContext, Task  # noqa: E402
from segue.engine.backends.sao_small.loading import load_model  # noqa: E402
from segue.engine.errors import Cancelled, SegueError  # noqa: E402
from segue.engine.timeline import Grid  # noqa: E402
from tests.sao.fixtures import write_model_folder, write_serving_folders  # noqa: E402

SR = 48000


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return write_serving_folders(tmp_path_factory.mktemp("sao_serving"))


@pytest.fixture(scope="module")
def backend(folders):
    b = create("sao-small", BackendConfig(model=str(folders / "model"), text_encoder=str(folders / "t5"),
                                          precision="fp32", extra={"context_seconds": 0.15,
                                                                            "prefetch": False}))
    b.load()
    return b


def tone(n, ch=2, f=220.0, sr=SR):
    t = np.arange(n) / sr
    x = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    return np.repeat(x[None], ch, axis=0)


def test_capabilities_and_info(backend):
    caps = backend.capabilities()
    assert caps.inpaint and caps.continue_ and caps.generate and caps.native_sr == 44100
    info = backend.info()
    assert info["device"] == "cpu" and info["dtype"] == "float32" and info["parameters"]["dit"] > 0
    assert json.dumps(info)                             # status detail is JSON


def test_inpaint_exact_shape_joins_and_seeds(backend):
    audio = tone(SR)
    steps = []
    ctx = JobContext(report=lambda f, s: steps.append(s))
    task = Task("inpaint", SR, 2, 20000, 9001, audio, Grid(120), "drums", seed=5, variations=2, source_key="a")
    out = backend.inpaint(task, ctx)
    assert [o.shape for o in out] == [(2, 9001)] * 2 and all(o.dtype == np.float32 for o in out)
    assert [s for s in steps if s.startswith("generate ")] == [f"generate {k}/8" for k in range(1, 9)]
    assert np.abs(out[0] - out[1]).max() > 1e-3             # variations differ
    # both edges start/end on the source (equal-power crossfade inside the region)
    for o in out:
        assert np.abs(o[:, 0] - audio[:, 20000]).max() < 0.1
        assert np.abs(o[:, -1] - audio[:, 20000 + 9000]).max() < 0.1
    again = backend.inpaint(Task("inpaint", SR, 2, 20000, 9001, audio, Grid(120), "drums", seed=5,
                                 variations=1, source_key="a"), JobContext())
    np.testing.assert_allclose(again[0], out[0], atol=1e-5)  # variation 0 = seed 5 whatever the batch


def test_source_latents_cached_and_sliced(backend, monkeypatch):
    audio = tone(2 * SR, f=330.0)
    calls = []
    real = backend.model.vae.encode
    monkeypatch.setattr(backend.model.vae, "encode", lambda a, **k: (calls.append(a.shape[-1]), real(a, **k))[1])
    t = Task("inpaint", SR, 2, 60000, 5000, audio, None, "", source_key="cache-test")
    backend.inpaint(t, JobContext())
    first = sum(calls)
    assert 0 < first < audio.shape[-1] * 44100 / SR          # only the window (+ receptive field)
    backend.inpaint(t, JobContext())
    assert sum(calls) == first                                # repeated edit: no encoding


def test_partial_encode_and_decode_match_whole(backend):
    vae = backend.model.vae
    r = backend.ratio
    x = torch.from_numpy(tone(64 * r, sr=44100)[None] * 0.8)
    whole = vae.encode(x)
    m = backend.enc_margin
    a, b = 20, 30
    part = vae.encode(x[..., (a - m) * r:(b + m) * r])[..., m: m + b - a]
    torch.testing.assert_close(part, whole[..., a:b], atol=1e-5, rtol=1e-4)
    dec = vae.decode(whole)
    md = backend.dec_margin
    sl = vae.decode(whole[..., a - md: b + md])[..., md * r:(md + b - a) * r]
    torch.testing.assert_close(sl, dec[..., a * r: b * r], atol=1e-5, rtol=1e-4)


@torch.inference_mode()
def test_full_size_margins_are_exact_and_the_smallest():
    """On the full-size Oobleck VAE (random weights; the receptive field is structural), the computed
    margins make a slice match a whole pass and one frame less does not: every frame of margin is
    encoder or decoder work on each new region."""
    from segue.engine.backends.sao_small.config import SaoConfig, sao_small_config
    from segue.engine.backends.sao_small.oobleck import OobleckVAE, decoder_margin, encoder_margin

    cfg = SaoConfig.from_dict(sao_small_config()).vae
    torch.manual_seed(0)
    vae = OobleckVAE(cfg).eval()
    for mod in vae.modules():        # unit-gain weights: torch's default init fades the far field to
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):      # float noise
            fan_in = mod.weight[0].numel() if isinstance(mod, torch.nn.Conv1d) else mod.weight.shape[0] * mod.weight.shape[-1] // mod.stride[0]
            torch.nn.init.normal_(mod.weight, std=fan_in ** -0.5)
    r, m, md = cfg.downsampling_ratio, encoder_margin(cfg), decoder_margin(cfg)
    assert (m, md) == (8, 10)
    x = torch.randn(1, 2, (2 * md + 12) * r) * 0.3
    a, b = md + 1, md + 11
    whole = vae.encode(x)

    def enc(k):
        return vae.encode(x[..., (a - k) * r:(b + k) * r])[..., k: k + b - a]

    def dec(k):
        return vae.decode(whole[..., a - k: b + k])[..., k * r:(k + b - a) * r]

    ref_z, ref_y = whole[..., a:b], vae.decode(whole)[..., a * r: b * r]
    assert (enc(m) - ref_z).abs().max() < 1e-4 * ref_z.abs().max()
    assert (enc(m - 1) - ref_z).abs().max() > 1e-4 * ref_z.abs().max()
    err = [float((dec(k) - ref_y).abs().max() / ref_y.abs().max()) for k in (md, md - 1)]
    assert err[0] < 1e-5 < 1e-4 < err[1], err


def test_continue_mono_exact_and_continuous(backend):
    src = tone(30000, ch=1)
    task = Task("continue", SR, 1, 30000, 24001, src, Grid(96, 7, 8), "bass", seed=2, source_key="m")
    out = backend.continue_(task, JobContext())
    assert out[0].shape == (1, 24001)
    predicted = src[0, -1] + (src[0, -1] - src[0, -2])
    assert abs(out[0][0, 0] - predicted) < 1e-4


def test_generate_longer_than_window_is_chunked(backend):
    n = int(1.9 * 44100)                                      # window is 0.74 s
    out = backend.generate(Task("generate", 44100, 2, 0, n, None, Grid(120), "techno", seed=1), JobContext())
    assert out[0].shape == (2, n) and np.isfinite(out[0]).all()


def test_prompt_carries_bpm(backend):
    assert backend.prompt_for(Task("generate", 44100, 2, 0, 1, grid=Grid(120), prompt="warm house")) == "warm house, 120 BPM"
    assert backend.prompt_for(Task("generate", 44100, 2, 0, 1, grid=Grid(92.5))) == "92.5 BPM"


def test_cancel_stops_between_steps(backend):
    seen = []

    def report(f, s):
        seen.append(s)

    ctx = JobContext(report=report, cancelled=lambda: any(s == "generate 3/8" for s in seen))
    with pytest.raises(Cancelled):
        backend.inpaint(Task("inpaint", SR, 2, 10000, 4000, tone(SR), None, "", source_key="c"), ctx)
    assert "generate 4/8" not in seen


def test_out_of_memory_falls_back_to_smaller_batches(backend, monkeypatch):
    task = Task("inpaint", SR, 2, 15000, 6000, tone(SR), None, "x", seed=9, variations=3, source_key="o")
    want = backend.inpaint(task, JobContext())
    real = backend._sample_batch

    def flaky(seeds, *a, **k):
        if len(seeds) > 1:
            raise torch.OutOfMemoryError("simulated")
        return real(seeds, *a, **k)

    monkeypatch.setattr(backend, "_sample_batch", flaky)
    got = backend.inpaint(task, JobContext())
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


# ------------------------------------------------------------------ bad model folders

def _corrupt(folders, tmp_path, edit):
    from safetensors.torch import load_file, save_file

    d = tmp_path / "bad"
    d.mkdir()
    (d / "model_config.json").write_text((folders / "model" / "model_config.json").read_text())
    sd = load_file(str(folders / "model" / "model.safetensors"))
    edit(sd)
    save_file(sd, str(d / "model.safetensors"))
    return d


def test_missing_key_is_named(folders, tmp_path):
    key = "model.model.transformer.layers.1.cross_attn.to_kv.weight"
    d = _corrupt(folders, tmp_path, lambda sd: sd.pop(key))
    with pytest.raises(SegueError) as e:
        load_model(d)
    assert e.value.code == "model_invalid" and key in e.value.message and "missing" in e.value.message


def test_extra_and_misshaped_keys_are_named(folders, tmp_path):
    def edit(sd):
        sd["model.model.surprise.weight"] = torch.zeros(3)
        sd["pretransform.model.decoder.layers.0.weight_v"] = torch.zeros(1, 2, 3)

    d = _corrupt(folders, tmp_path, edit)
    with pytest.raises(SegueError) as e:
        load_model(d)
    msg = e.value.message
    assert "model.model.surprise.weight" in msg and "pretransform.model.decoder.layers.0.weight_v [1, 2, 3]" in msg


def test_checkpoint_of_another_model(folders, tmp_path):
    d = _corrupt(folders, tmp_path, lambda sd: [sd.pop(k) for k in list(sd)] and sd.update(
        {"encoder.block.0.weight": torch.zeros(2)}))
    with pytest.raises(SegueError) as e:
        load_model(d)
    assert e.value.code == "model_invalid" and "not a Stable Audio checkpoint" in e.value.message


def test_missing_folder_and_text_encoder(folders, tmp_path):
    b = create("sao-small", BackendConfig(model=str(tmp_path / "nope"), precision="fp32"))
    with pytest.raises(SegueError) as e:
        b.load()
    assert e.value.code == "model_not_found"
    (tmp_path / "t5bad").mkdir()
    b = create("sao-small", BackendConfig(model=str(folders / "model"), text_encoder=str(tmp_path / "t5bad"),
                                          precision="fp32"))
    with pytest.raises(SegueError) as e:
        b.load()
    assert e.value.code == "text_encoder_missing"


def test_ckpt_format_loads(folders, tmp_path):
    from safetensors.torch import load_file

    cfg = json.loads((folders / "model" / "model_config.json").read_text())
    sd = load_file(str(folders / "model" / "model.safetensors"))
    write_model_folder(tmp_path / "ck", cfg, sd, fmt="ckpt")
    m, meta = load_model(tmp_path / "ck")
    assert meta["checkpoint"].endswith("model.ckpt")


def test_multi_region_only_regions_change(backend):
    audio = tone(SR, f=180.0)
    regions = [(12000, 3000), (30000, 2500)]
    task = Task("inpaint", SR, 2, 10000, 24000, audio, None, "", seed=3, regions=regions, source_key="mr")
    out = backend.inpaint(task, JobContext())[0]
    assert out.shape == (2, 24000)
    inside = np.zeros(24000, bool)
    for a, n in regions:
        inside[a - 10000: a - 10000 + n] = True
        assert np.abs(out[:, a - 10000 + 200: a - 10000 + n - 200] - audio[:, a + 200: a + n - 200]).max() > 1e-3
    np.testing.assert_array_equal(out[:, ~inside], audio[:, 10000:34000][:, ~inside])   # bit-identical


def test_idle_prefetch_encodes_the_rest_of_the_file(folders):
    import time

    b = create("sao-small", BackendConfig(model=str(folders / "model"), text_encoder=str(folders / "t5"),
                                          precision="fp32", extra={"context_seconds": 0.15, "prefetch": True}))
    b.load()
    try:
        audio = tone(3 * SR, f=250.0)
        task = Task("inpaint", SR, 2, 60000, 4000, audio, None, "", source_key="pf")
        b.inpaint(task, JobContext())
        src = b.cache.source("pf", audio, SR)
        deadline = time.monotonic() + 60
        while not bool(src.have.all()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bool(src.have.all())                         # the whole file, while idle
        n = b.cache.encoded_frames
        b.inpaint(Task("inpaint", SR, 2, 120000, 4000, audio, None, "", source_key="pf"), JobContext())
        assert b.cache.encoded_frames == n                  # a new region far away: nothing to encode
    finally:
        b.close()


def test_prefetch_waits_its_grace_delay_so_a_quick_reroll_does_not_queue_behind_it(folders):
    import time

    b = create("sao-small", BackendConfig(model=str(folders / "model"), text_encoder=str(folders / "t5"),
                                          precision="fp32", extra={"context_seconds": 0.15, "prefetch": True,
                                                                   "prefetch_delay": 30}))
    b.load()
    try:
        audio = tone(3 * SR, f=250.0)
        b.inpaint(Task("inpaint", SR, 2, 60000, 4000, audio, None, "", source_key="gd"), JobContext())
        n = b.cache.encoded_frames
        time.sleep(1.0)
        assert b.cache.encoded_frames == n                  # still inside the 30 s grace delay: nothing encoded
        src = b.cache.source("gd", audio, SR)
        assert not bool(src.have.all())
    finally:
        b.close()


def test_t5_runs_on_the_real_tokens_only_with_the_same_result(backend):
    """T5 sees only the prompt's real tokens; the (zero-padded) embeddings equal a run over all
    max_length positions, as SAT computes them."""
    text = backend.text
    seen = []
    real = text.model.forward
    text.model.forward = lambda **k: (seen.append(k["input_ids"].shape[1]), real(**k))[1]
    try:
        prompts = ["ab", "x"]                                    # shorter than max_length (6 here)
        emb = text.embed(prompts)
        tok = text.tokenizer(prompts, truncation=True, max_length=text.max_length, padding="max_length",
                             return_tensors="pt")
        mask = tok["attention_mask"]
        assert seen == [int(mask.sum(1).max())] and seen[0] < text.max_length
        whole = real(input_ids=tok["input_ids"], attention_mask=mask.bool())["last_hidden_state"].float()
        torch.testing.assert_close(emb, whole * mask[..., None].float(), atol=1e-5, rtol=1e-4)
    finally:
        text.model.forward = real


@torch.inference_mode()
def test_packed_conv_weights_are_the_same_numbers(backend):
    """The loader stores the VAE's conv weights in the layout the layers read (channels-last rows);
    encode and decode are bit-identical to plain contiguous weights."""
    from segue.engine.backends.sao_small.oobleck import Conv1d, ConvTranspose1d

    vae = backend.model.vae
    convs = [m for m in vae.modules() if isinstance(m, (Conv1d, ConvTranspose1d))]
    assert convs and all(m.weight.unsqueeze(2).is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not any(m.weight.is_contiguous() for m in convs if m.weight.shape[-1] > 1 and m.weight.shape[1] > 1)
    x = torch.from_numpy(tone(8 * backend.ratio, sr=44100)[None])
    z, y = vae.encode(x), vae.decode(torch.randn(1, vae.cfg.latent_dim, 4, generator=torch.Generator().manual_seed(0)))
    saved = [m.weight.data for m in convs]
    try:
        for m in convs:
            m.weight.data = m.weight.data.contiguous()
        assert torch.equal(vae.encode(x), z)
        assert torch.equal(vae.decode(torch.randn(1, vae.cfg.latent_dim, 4, generator=torch.Generator().manual_seed(0))), y)
    finally:
        for m, w in zip(convs, saved):
            m.weight.data = w
