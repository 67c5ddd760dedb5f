"""transformers' MusicGen `generate()`, minus its duplicated prompt prefill, on a static KV cache.

Why: in transformers 5.23/5.24 `MusicgenForConditionalGeneration.generate` runs the prompt
prefill once itself (its result is handed to `GenerationMixin._sample`, which ignores it) and
`_sample` runs it again: for a 4 s prompt that is one extra full forward pass over ~200 tokens
(1-2 s on a 2-core CPU). With a user-supplied static cache the second pass is worse than slow:
it writes the prompt into the cache a second time (index out of range, or a cache holding the
prompt twice). See shared/reference/models.md.

How, without copying transformers' code: `generate()` calls the model's public `forward`; our
subclass remembers the output of a prefill call (no cache yet, or an empty one) and, when the very
next call is the same prefill again (equal decoder ids, same encoder output and cache object),
returns that output
instead of recomputing it. Everything else (sampling, logits processors, delay pattern, EnCodec
decode) is transformers' own code, so tokens are identical to plain `generate()` from the same
seed (tests/test_musicgen_generation.py counts decoder calls and compares tokens).

Public extension points used: subclassing `forward`, `past_key_values=EncoderDecoderCache(
StaticCache, DynamicCache)` (static self-attention cache, dynamic cross-attention cache), and a
`StoppingCriteria` that reports progress per block of tokens and raises on cancel.
"""

from __future__ import annotations

import functools

import torch
from transformers import (DynamicCache, EncoderDecoderCache, MusicgenForConditionalGeneration, StaticCache,
                          StoppingCriteria)


class MusicgenPrefillOnce(MusicgenForConditionalGeneration):
    """MusicgenForConditionalGeneration whose generate() runs the prompt prefill once.

    `prefill_calls_skipped` counts the skipped duplicates (for tests and status)."""

    prefill_calls_skipped = 0

    def _memo_clear(self) -> None:
        self.__dict__["_prefill_memo"] = None

    # functools.wraps keeps the signature transformers inspects to validate generate()'s kwargs
    @functools.wraps(MusicgenForConditionalGeneration.forward)
    def forward(self, *args, **kwargs):
        ids = kwargs.get("decoder_input_ids")
        enc = kwargs.get("encoder_outputs")
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        # a prefill: the first decoder call of a generation, with no cache yet or an empty one
        is_prefill = ids is not None and not self.training and (cache is None or cache.get_seq_length() == 0)
        memo = self.__dict__.get("_prefill_memo")
        self.__dict__["_prefill_memo"] = None          # a memo is good for the very next call only
        if ids is not None and memo is not None:
            m_ids, m_enc, m_cache, out = memo
            if m_enc is enc and m_cache is cache and m_ids.shape == ids.shape and torch.equal(m_ids, ids):
                self.prefill_calls_skipped += 1
                return out
        out = super().forward(*args, **kwargs)
        if is_prefill:
            self.__dict__["_prefill_memo"] = (ids, enc, cache, out)
        return out


def static_cache(model: MusicgenForConditionalGeneration, max_len: int) -> EncoderDecoderCache:
    """Self-attention keys/values preallocated for `max_len` decoder tokens (no per-step torch.cat
    of the whole cache, and a fixed shape torch.compile can specialise on); cross-attention keys
    are computed once from the text and kept in a DynamicCache."""
    return EncoderDecoderCache(StaticCache(config=model.decoder.config, max_cache_len=int(max_len)), DynamicCache())


class BlockProgress(StoppingCriteria):
    """Called by generate() after every token: checks for cancel/timeout every token (ctx.check()
    raises, which unwinds generate()), reports progress once per `block` tokens. Never stops early."""

    def __init__(self, ctx, total: int, block: int = 25, lo: float = 0.1, hi: float = 0.9, what: str = "tokens"):
        self.ctx, self.total, self.block, self.lo, self.hi, self.what = ctx, max(int(total), 1), max(int(block), 1), lo, hi, what
        self.done = 0

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        self.done += 1
        self.ctx.check()
        if self.done % self.block == 0 or self.done == self.total:
            frac = self.lo + (self.hi - self.lo) * min(self.done / self.total, 1.0)
            self.ctx.progress(frac, f"{self.what} {self.done}/{self.total}")
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
