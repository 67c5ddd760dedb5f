"""sa3-small backend on a tiny official-layout model (tests/sa3/fixtures.py): native mask inpainting,
several regions, continuation, variable-length generate, exact lengths, bit-identical kept audio,
seeds, progress and cancel, OOM fallback, the window policy, latent reuse and clear load errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from segue.engine.backends import create  # noqa: E402
from segue.engine.backends.base import BackendConfig, JobContext, Task  # noqa: E402
from segue.engine.backends.neural.window import official_canvas_frames  # noqa: E402
from segue.engine.errors import Cancelled, SegueError  # noqa: E402
from segue.engine.timeline import Grid  # noqa: E402
from tests.sa3.fixtures import write_tiny_sa3_folder  # noqa: E402

SR = 48000


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_sa3_folder(tmp_path_factory.mktemp("sa3_tiny") / "model")


def make(folder, **extra):
    b = create("sa3-small", BackendConfig(model=str(folder), precision="fp32", extra={"prefetch": False, **extra}))
    b.load()
    return b


@pytest.fixture(scope="module")
def backend(folder):
    return make(folder)


def loop(seconds, sr=SR, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * 110 * t) + (np.mod(t, 0.5) < 0.02) * rng.normal(0, 0.4, n)
    return np.stack([x, 0.8 * x]).astype(np.float32)


def test_capabilities_and_info(backend):
    caps = backend.capabilities()
    assert caps.inpaint and caps.continue_ and caps.generate and caps.max_output_seconds == 120.0
    info = backend.info()
    assert info["device"] == "cpu" and info["dtype"] == "float32" and info["ae_dtype"] == "float32"
    assert info["parameters"]["dit"] > 0 and info["rss_bytes"] > 0 and info["window"] == "short"
    assert json.dumps(info)


def test_multi_region_inpaint_keeps_everything_else_bit_identical(backend):
    audio = loop(8.0)
    regions = [(2 * SR, SR // 2), (4 * SR + 1234, SR // 4)]
    steps = []
    task = Task("inpaint", SR, 2, int(1.5 * SR), 4 * SR, audio, Grid(120), "drums", seed=4, variations=2,
                source_key="mr", regions=regions)
    out = backend.inpaint(task, JobContext(report=lambda f, s: steps.append(s)))
    assert [o.shape for o in out] == [(2, 4 * SR)] * 2 and all(o.dtype == np.float32 for o in out)
    assert [s for s in steps if s.startswith("generate ")] == [f"generate {k}/8" for k in range(1, 9)]
    inside = np.zeros(4 * SR, bool)
    for a, n in regions:
        inside[a - task.start_sample: a - task.start_sample + n] = True
    for o in out:
        np.testing.assert_array_equal(o[:, ~inside], audio[:, task.start_sample: task.start_sample + 4 * SR][:, ~inside])
        for a, n in regions:
            r = slice(a - task.start_sample + 2000, a - task.start_sample + n - 2000)
            assert np.abs(o[:, r] - audio[:, a + 2000: a + n - 2000]).max() > 1e-3   # regenerated
    assert np.abs(out[0] - out[1]).max() > 1e-3                                       # variations differ
    # variation 0 is seed 4 whatever the batch (up to float rounding of batched matmuls) ...
    one = backend.inpaint(Task("inpaint", SR, 2, int(1.5 * SR), 4 * SR, audio, Grid(120), "drums", seed=4,
                               source_key="mr", regions=regions), JobContext())
    np.testing.assert_allclose(one[0], out[0], atol=1e-5)
    # ... and the same request with the same seed gives the same audio, bit for bit
    again = backend.inpaint(Task("inpaint", SR, 2, int(1.5 * SR), 4 * SR, audio, Grid(120), "drums", seed=4,
                                 source_key="mr", regions=regions), JobContext())
    np.testing.assert_array_equal(again[0], one[0])


def test_mask_is_native_and_window_short_by_default(backend, monkeypatch):
    seen = {}
    real = backend._sample_decode

    def spy(seeds, cross, glob, latents, mask, keep, span, *a):
        seen.update(mask=mask.clone(), keep=keep, span=span, seconds=cross.shape)
        return real(seeds, cross, glob, latents, mask, keep, span, *a)

    monkeypatch.setattr(backend, "_sample_decode", spy)
    audio = loop(30.0, 44100)
    task = Task("inpaint", 44100, 2, 10 * 44100, 22050, audio, Grid(120), "", source_key="w")   # 1 beat at 120
    backend.inpaint(task, JobContext())
    wa, wb = seen["span"][:2]
    assert (wb - wa) % 2 == 0 and wb - wa <= 2 * round(2.0 * 44100 / 4096) + 8       # region + 2 s each side
    gen = np.flatnonzero(seen["mask"].numpy() == 0) + wa
    assert gen[0] * 4096 <= 10 * 44100 and (gen[-1] + 1) * 4096 >= 10.5 * 44100       # covers the region
    assert seen["keep"] is None                                                       # every frame valid
    backend.inpaint(Task("inpaint", 44100, 2, 10 * 44100, 22050, audio, Grid(120), "", source_key="w",
                         options={"window": "official"}), JobContext())
    wa, wb = seen["span"][:2]
    assert (wa, wb) == (0, official_canvas_frames(30.0, 44100, 4096))                 # 30 s + 6 s, even
    m = seen["mask"].numpy()
    assert m[: 9 * 10].all() and not m[int(np.ceil(30 * 44100 / 4096)):].any()        # padding generated
    assert seen["keep"].sum() == min(int(np.ceil(30 * 44100 / 4096)) + int(6 * 44100 / 4096), wb)


def test_new_overlapping_region_encodes_only_new_frames(backend):
    audio = loop(12.0, 44100, seed=3)
    n0 = backend.cache.encoded_frames
    backend.inpaint(Task("inpaint", 44100, 2, 5 * 44100, 22050, audio, None, "", source_key="ov"), JobContext())
    first = backend.cache.encoded_frames - n0
    backend.inpaint(Task("inpaint", 44100, 2, 5 * 44100, 22050, audio, None, "", seed=9, source_key="ov"), JobContext())
    assert backend.cache.encoded_frames - n0 == first                                 # re-roll: nothing
    backend.inpaint(Task("inpaint", 44100, 2, 6 * 44100, 22050, audio, None, "", source_key="ov"), JobContext())
    assert 0 < backend.cache.encoded_frames - n0 - first < first                      # only the difference


def test_codec_slices_equal_a_whole_encode(backend):
    audio = torch.from_numpy(loop(4.0, 44100)[:, : 40 * 4096])[None]
    whole = backend.model.encode(audio)
    src = backend.cache.source(None, audio[0].numpy(), 44100)
    part = backend.cache.frames(src, 11, 27)
    torch.testing.assert_close(part, whole[0, :, 11:27], atol=1e-5, rtol=1e-4)


def test_continue_exact_and_continuous(backend):
    src = loop(3.0, SR)[:, : 3 * SR - 17]
    task = Task("continue", SR, 1, src.shape[1], 2 * SR + 3, src[:1], Grid(96, 7, 8), "bass", seed=2, source_key="c")
    out = backend.continue_(task, JobContext())
    assert out[0].shape == (1, 2 * SR + 3)
    assert abs(out[0][0, 0] - (2 * src[0, -1] - src[0, -2])) < 1e-4


def test_generate_variable_length_official_canvas(backend, monkeypatch):
    seen = {}
    real = backend._sample_decode
    monkeypatch.setattr(backend, "_sample_decode",
                        lambda seeds, c, g, lat, mask, keep, span, *a: (seen.update(span=span, keep=keep),
                                                                         real(seeds, c, g, lat, mask, keep, span, *a))[1])
    for n in (3 * 44100, 44100 * 5 + 1):
        out = backend.generate(Task("generate", 44100, 2, 0, n, None, Grid(120), "techno", seed=1, variations=2),
                               JobContext())
        assert [o.shape for o in out] == [(2, n)] * 2 and all(np.abs(o).max() <= 1.0 for o in out)
        assert seen["span"][1] == official_canvas_frames(n / 44100, 44100, 4096) and seen["span"][1] % 2 == 0
    assert official_canvas_frames(3.0, 44100, 4096) == 98


def test_prompt_carries_tempo(backend):
    assert backend.prompt_for(Task("generate", 44100, 2, 0, 1, grid=Grid(120), prompt="warm house")) == "warm house, 120 BPM"


def test_cancel_at_the_next_step(backend):
    seen = []
    ctx = JobContext(report=lambda f, s: seen.append(s), cancelled=lambda: "generate 3/8" in seen)
    with pytest.raises(Cancelled):
        backend.inpaint(Task("inpaint", SR, 2, SR, SR // 2, loop(3.0), None, "", source_key="x"), ctx)
    assert "generate 4/8" not in seen


def test_out_of_memory_falls_back_to_smaller_batches(backend, monkeypatch):
    task = Task("inpaint", SR, 2, SR, SR // 2, loop(3.0), None, "x", seed=9, variations=3, source_key="o")
    want = backend.inpaint(task, JobContext())
    real = backend._sample_decode

    def flaky(seeds, *a, **k):
        if len(seeds) > 1:
            raise torch.OutOfMemoryError("simulated")
        return real(seeds, *a, **k)

    monkeypatch.setattr(backend, "_sample_decode", flaky)
    ctx = JobContext()
    got = backend.inpaint(task, ctx)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
    assert ctx.notes and "at a time" in ctx.notes[0]


def test_too_long_and_bad_window(backend):
    with pytest.raises(SegueError) as e:
        backend.generate(Task("generate", 44100, 2, 0, 121 * 44100, None, None, ""), JobContext())
    assert e.value.code == "too_long"
    with pytest.raises(SegueError) as e:
        backend.inpaint(Task("inpaint", SR, 2, SR, 100, loop(2.0), None, "", options={"window": "huge"}), JobContext())
    assert e.value.code == "bad_option"


def test_text_encoder_precision_follows_the_dit_unless_asked(folder):
    """T5Gemma runs in bf16 beside a bf16 DiT (text_precision=auto), in fp32 beside an fp32 one or when
    asked; its embeddings stay close to the fp32 ones and a bad value is a clear error."""
    def build(precision, **extra):
        b = create("sa3-small", BackendConfig(model=str(folder), precision=precision,
                                              extra={"prefetch": False, "warmup": False, **extra}))
        b.load()
        return b

    b16, b32 = build("bf16"), build("bf16", text_precision="fp32")
    assert b16.info()["text_dtype"] == "bfloat16" and b32.info()["text_dtype"] == "float32"
    assert next(b16.model.prompt.encoder.parameters()).dtype == torch.bfloat16
    e16, _ = b16.model.prompt(["tight funk drums, 120 BPM"])
    e32, _ = b32.model.prompt(["tight funk drums, 120 BPM"])
    assert e16.dtype == torch.bfloat16 and e32.dtype == torch.float32
    assert (e16.float() - e32).norm() / e32.norm() < 0.05
    assert make(folder).info()["text_dtype"] == "float32"              # fp32 DiT -> fp32 T5Gemma
    with pytest.raises(SegueError) as e:
        build("bf16", text_precision="int4")
    assert e.value.code == "bad_precision"


# ------------------------------------------------------------------ bad model folders

def test_wrong_folder_and_missing_text_encoder(folder, tmp_path):
    with pytest.raises(SegueError) as e:
        make(tmp_path / "nowhere")
    assert e.value.code == "model_not_found" and "nowhere" in e.value.message
    bad = tmp_path / "no_t5"
    shutil.copytree(folder, bad)
    (bad / "t5gemma-b-b-ul2" / "config.json").unlink()
    with pytest.raises(SegueError) as e:
        make(bad)
    assert e.value.code == "text_encoder_missing" and "config.json" in e.value.message


def test_sao_checkpoint_given_to_sa3_and_the_reverse(folder, tmp_path):
    from tests.sao.fixtures import write_serving_folders

    sao = write_serving_folders(tmp_path / "sao")
    with pytest.raises(SegueError) as e:
        make(sao / "model")
    assert e.value.code == "model_invalid" and "sao-small" in e.value.message
    b = create("sao-small", BackendConfig(model=str(folder), text_encoder=str(sao / "t5"), precision="fp32",
                                          extra={"prefetch": False}))
    with pytest.raises(SegueError) as e:
        b.load()
    assert e.value.code == "model_invalid" and "sa3-small" in e.value.message


def test_t5gemma_runs_on_the_real_tokens_only_with_the_same_result(folder):
    """The prompt encoder sees only the real tokens (not max_length); the embeddings equal a run over
    the whole padded sequence, for right- and left-padding tokenizers alike."""
    b = make(folder)
    p = b.model.prompt
    texts = ["tight funk drums, 120 BPM", "pad"]
    seen = []
    real = p.encoder.forward
    p.encoder.forward = lambda **k: (seen.append(k["input_ids"].shape[1]), real(**k))[1]
    try:
        emb, mask = p(texts)
        assert seen[-1] == int(mask.sum(1).max()) < mask.shape[1]
        tok = p.tokenizer(texts, truncation=True, max_length=p.max_length, padding="max_length", return_tensors="pt")
        whole = real(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"].bool())["last_hidden_state"]
        torch.testing.assert_close(emb, p.apply_padding(whole, mask), atol=1e-5, rtol=1e-4)
        p.tokenizer.padding_side = "left"
        emb_left, mask_left = p(texts)
        assert seen[-1] == mask.shape[1]                                  # left pads: the whole sequence
        assert torch.equal(mask_left.sum(1), mask.sum(1))
    finally:
        p.encoder.forward = real
        p.tokenizer.padding_side = "right"
