"""Conditioning: the `seconds_total` number embedder and the T5 text encoder.

Cross-attention tokens are [T5 tokens (max_length), 1 seconds token]; the global
condition is the seconds embedding alone. T5 (`t5-base`) is not in the
checkpoint: it is loaded with transformers from its own folder.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...cache import ByteCache
from ..neural.prompt import encode_real_tokens
from .config import ConditioningConfig


class _LearnedFourier(nn.Module):
    """x -> [x, sin(2 pi x w), cos(2 pi x w)] with learned w (dim/2)."""

    def __init__(self, dim: int = 256):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, x):
        x = x[:, None]
        f = x * self.weights[None, :] * 2 * math.pi
        return torch.cat([x, f.sin(), f.cos()], dim=-1)


class NumberEmbedder(nn.Module):
    def __init__(self, features: int, dim: int = 256):
        super().__init__()
        self.embedding = nn.Sequential(_LearnedFourier(dim), nn.Linear(dim + 1, features))

    def forward(self, x):
        return self.embedding(x)


class SecondsConditioner(nn.Module):
    """seconds -> (B, 1, cond_dim): clamp to [min, max], normalise to [0, 1], embed."""

    def __init__(self, cfg: ConditioningConfig):
        super().__init__()
        self.lo, self.hi = cfg.seconds_min, cfg.seconds_max
        self.embedder = NumberEmbedder(cfg.cond_dim)

    def forward(self, seconds: list[float] | torch.Tensor, device=None) -> torch.Tensor:
        w = self.embedder.embedding[1].weight
        x = torch.as_tensor(seconds, dtype=torch.float32, device=device or w.device).clamp(self.lo, self.hi)
        x = ((x - self.lo) / (self.hi - self.lo)).to(w.dtype)
        return self.embedder(x)[:, None, :]


class TextEncoder:
    """T5 encoder + tokenizer with a per-prompt cache of the masked embeddings.

    Embeddings are (max_length, d) with padded positions zeroed, as SAT does; the
    DiT attends over all of them (SAT disables the cross-attention mask).
    """

    def __init__(self, tokenizer, model, max_length: int, cache_bytes: int = 16 << 20):
        self.tokenizer, self.model, self.max_length = tokenizer, model.eval(), max_length
        self._cache = ByteCache(cache_bytes)      # prompt -> (max_length, d): 197 KB each for t5-base

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)

    @torch.no_grad()
    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(B, max_length, d) float32 on the encoder's device."""
        got = {p: self._cache.get(p) for p in dict.fromkeys(prompts)}
        missing = [p for p, e in got.items() if e is None]
        if missing:
            enc = self.tokenizer(missing, truncation=True, max_length=self.max_length,
                                 padding="max_length", return_tensors="pt")
            dev = next(self.model.parameters()).device
            ids, mask = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
            h = encode_real_tokens(self.model, ids, mask.bool()).float()     # pads: zeros, as SAT's mask makes them
            h = h * mask[..., None].float()
            for p, e in zip(missing, h):
                got[p] = e = e.clone()          # its own storage: the cache counts its bytes
                self._cache.put(p, e)
        return torch.stack([got[p] for p in prompts])


def load_text_encoder(path: str, max_length: int, device: str = "cpu", dtype=torch.float32) -> TextEncoder:
    """T5EncoderModel + tokenizer from a local folder (offline: never downloads)."""
    from transformers import AutoTokenizer, T5EncoderModel

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = T5EncoderModel.from_pretrained(path, local_files_only=True, dtype=dtype).to(device)
    return TextEncoder(tok, model, max_length)
