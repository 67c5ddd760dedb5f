"""MusicGen through transformers' generate(): the exact-length arithmetic, the skipped duplicate
prefill (counted decoder calls) and token-identical output against plain generate() from the same
seed, with and without the static cache. A tiny random-init MusicGen saved in the official layout."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)     # tiny models: thread hand-offs cost more than the math on a busy 2-core machine

from segue.engine.backends.musicgen import plan  # noqa: E402
from segue.engine.backends.musicgen.loading import load_model  # noqa: E402
from segue.engine.backends.musicgen.prefill import MusicgenPrefillOnce, static_cache  # noqa: E402
from tests.musicgen.fixtures import write_tiny_folder  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration
    from transformers.utils import logging as hf_logging

    folder = write_tiny_folder(tmp_path_factory.mktemp("mg") / "musicgen-small")
    ours, tok = load_model(folder, torch.float32, "cpu")
    hf_logging.set_verbosity_error()
    plain = MusicgenForConditionalGeneration.from_pretrained(str(folder)).eval()
    assert type(plain) is MusicgenForConditionalGeneration and isinstance(ours, MusicgenPrefillOnce)
    text = AutoTokenizer.from_pretrained(str(folder))(["drums, 120 BPM"], return_tensors="pt")
    return ours, plain, text


def _count_decoder_calls(model):
    calls = []
    h = model.decoder.register_forward_hook(lambda mod, args, kwargs, out: calls.append(1), with_kwargs=True)
    return calls, h


def _generate(model, text, prompt, n, seed=3, cache=None):
    kw = dict(text, max_new_tokens=n, do_sample=True, guidance_scale=3.0, top_k=250)
    if prompt is not None:
        kw["input_values"] = prompt
    if cache is not None:
        kw["cache"] = cache
    torch.manual_seed(seed)
    with torch.inference_mode():
        return model.generate(**kw)


@pytest.mark.parametrize("prompt_samples", [0, 640, 641, 1279, 6400, 12345, 32000, 32100, 64000 - 1])
def test_output_length_follows_the_formula(models, prompt_samples):
    ours, _, text = models
    prompt = None if prompt_samples == 0 else torch.randn(1, 1, prompt_samples) * 0.1
    for extra_seconds in (0.02, 0.37, 1.0):
        total = prompt_samples / plan.MODEL_SR + extra_seconds
        n = plan.new_tokens(prompt_samples, total)
        y = _generate(ours, text, prompt, n)
        frames = plan.output_frames(prompt_samples, n)
        assert y.shape[-1] == frames * plan.HOP
        assert frames == max(math.ceil(50 * total - 1e-9), plan.MIN_FRAMES)   # ceil(50 D) frames: covers D seconds
        assert y.shape[-1] >= round(plan.MODEL_SR * total)


def test_new_tokens_refuses_a_total_inside_the_prompt():
    with pytest.raises(ValueError):
        plan.new_tokens(32000, 0.99)


@pytest.mark.parametrize("with_prompt", [True, False])
def test_duplicate_prefill_skipped_and_tokens_identical_to_plain_generate(models, with_prompt):
    ours, plain, text = models
    prompt = torch.randn(1, 1, 640 * 40) * 0.2 if with_prompt else None
    n = 30
    calls_plain, h1 = _count_decoder_calls(plain)
    calls_ours, h2 = _count_decoder_calls(ours)
    try:
        ref = _generate(plain, text, prompt, n)
        skipped = ours.prefill_calls_skipped
        out = _generate(ours, text, prompt, n)
        assert ours.prefill_calls_skipped == skipped + 1
        P = plan.prompt_frames(prompt.shape[-1]) if with_prompt else 0
        out_static = _generate(ours, text, prompt, n, cache=static_cache(ours, 1 + P + n))
    finally:
        h1.remove()
        h2.remove()
    # plain generate(): the prefill twice, then one call per further token; ours: the prefill once
    assert len(calls_plain) == n + 1
    assert len(calls_ours) == 2 * n                  # two runs of ours, n calls each
    assert torch.equal(out, ref)
    assert torch.equal(out_static, ref)


def test_a_different_seed_changes_the_tokens(models):
    # the identity above must be able to fail: another seed gives other audio
    ours, _, text = models
    prompt = torch.randn(1, 1, 640 * 10) * 0.2
    a = _generate(ours, text, prompt, 20, seed=1)
    b = _generate(ours, text, prompt, 20, seed=2)
    assert not torch.equal(a, b)


def test_memo_is_used_only_for_the_same_prefill(models):
    ours, _, text = models
    enc = ours.get_encoder()(**text).last_hidden_state
    from transformers.modeling_outputs import BaseModelOutput

    eo = BaseModelOutput(last_hidden_state=enc)
    ids = torch.full((4, 5), 64, dtype=torch.long)
    with torch.inference_mode():
        skipped = ours.prefill_calls_skipped
        a = ours(encoder_outputs=eo, attention_mask=text["attention_mask"], decoder_input_ids=ids).logits
        other = ids.clone()
        other[:, -1] = 3
        b = ours(encoder_outputs=eo, attention_mask=text["attention_mask"], decoder_input_ids=other).logits
        assert ours.prefill_calls_skipped == skipped       # different ids: computed, not the memo
        assert not torch.equal(a, b)
    ours._memo_clear()
