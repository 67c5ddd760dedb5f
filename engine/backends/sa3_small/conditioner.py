"""Stable Audio 3 conditioning: the T5Gemma prompt encoder and the seconds_total number.

Follows the official `Stability-AI/stable-audio-3` `stable_audio_3/models/conditioners.py`
(`T5GemmaConditioner`, `NumberConditioner`) and `models/adp.py` (`NumberEmbedder`), the same
code as stable-audio-tools 0.0.20.

- prompt: T5Gemma (`google/t5gemma-b-b-ul2`, shipped in the SA3 repo's `t5gemma-b-b-ul2`
  subfolder) via transformers' `T5GemmaEncoderModel` and its Gemma tokenizer: texts padded
  to max_length (256) tokens; the last hidden state (B, 256, 768); padded positions replaced
  by the learned `padding_embedding` (768) from the SA3 checkpoint ("learned" mode).
- seconds_total: clamp to [min, max], normalise to [0, 1], exponential Fourier features
  (256) -> Linear(256 -> 768): (B, 1, 768).
Cross-attention tokens = [prompt tokens, seconds token] (B, 257, 768); global = seconds (B, 768).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import SegueError
from ..neural.prompt import encode_real_tokens
from .config import ConditioningConfig
from .dit import expo_fourier_features

T5GEMMA_WIDTH = 768      # the official conditioner hard-codes google/t5gemma-b-b-ul2's width


class SecondsConditioner(nn.Module):
    """seconds (list of floats, or a (B,) tensor) -> (B, 1, cond_dim)."""

    def __init__(self, cfg: ConditioningConfig, features: int = 256):
        super().__init__()
        self.lo, self.hi, self.features = cfg.seconds_min, cfg.seconds_max, features
        self.proj = nn.Linear(features, cfg.cond_dim)

    def forward(self, seconds) -> torch.Tensor:
        dev, dt = self.proj.weight.device, self.proj.weight.dtype
        s = torch.as_tensor([float(v) for v in seconds] if not torch.is_tensor(seconds) else seconds,
                            dtype=torch.float32, device=dev)
        s = ((s.clamp(self.lo, self.hi) - self.lo) / (self.hi - self.lo)).to(dt)
        return self.proj(expo_fourier_features(s, self.features))[:, None, :]


def t5gemma_files_missing(folder: Path) -> list[str]:
    """What a T5Gemma folder lacks to load offline (empty when complete)."""
    if not folder.is_dir():
        return [f"the folder {folder}"]
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model")):
        missing.append("tokenizer.json (or tokenizer.model)")
    if not any((folder / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json",
                                                  "pytorch_model.bin")):
        missing.append("model.safetensors")
    return missing


class PromptConditioner(nn.Module):
    """texts -> (embeddings (B, max_length, 768), attention mask (B, max_length) bool).

    The T5Gemma encoder is not part of the SA3 state dict (it loads from its own folder);
    only `padding_embedding` is. `load_encoder(folder)` must be called before `forward`.
    """

    def __init__(self, cfg: ConditioningConfig):
        super().__init__()
        self.max_length, self.mode = cfg.text_max_length, cfg.text_padding_mode
        if self.mode == "learned":
            self.padding_embedding = nn.Parameter(torch.zeros(cfg.cond_dim))
        self.tokenizer = None
        self.__dict__["encoder"] = None       # kept out of the state dict, as in the official conditioner

    def load_encoder(self, folder: str | Path, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> None:
        """Load the tokenizer and `T5GemmaEncoderModel` from `folder` (offline).

        Raises SegueError('text_encoder_missing') naming missing files, or ('model_invalid') when
        the encoder is not 768 wide.
        """
        folder = Path(folder)
        missing = t5gemma_files_missing(folder)
        if missing:
            raise SegueError("text_encoder_missing", f"the T5Gemma text encoder folder {folder} lacks "
                             + ", ".join(missing) + " (it ships in the SA3 repo's t5gemma-b-b-ul2 subfolder)")
        try:
            from transformers import AutoConfig, AutoTokenizer, T5GemmaEncoderModel

            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            config.is_encoder_decoder = False                 # as the official conditioner does
            enc = T5GemmaEncoderModel.from_pretrained(str(folder), config=config, local_files_only=True,
                                                      dtype=dtype)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SegueError("text_encoder_missing", f"cannot load T5Gemma from {folder}: {e}") from e
        width = enc.config.encoder.hidden_size if hasattr(enc.config, "encoder") else enc.config.hidden_size
        if width != T5GEMMA_WIDTH:
            raise SegueError("model_invalid", f"the T5Gemma encoder in {folder} is {width} wide; SA3 needs "
                             f"{T5GEMMA_WIDTH} (google/t5gemma-b-b-ul2)")
        self.__dict__["encoder"] = enc.to(device).eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.encoder is None:
            raise SegueError("internal", "the T5Gemma encoder is not loaded")
        dev = next(self.encoder.parameters()).device
        tok = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding="max_length",
                             return_tensors="pt")
        ids, mask = tok["input_ids"].to(dev), tok["attention_mask"].to(dev).bool()
        if self.mode == "none":       # the pads' own outputs are kept: run them (official)
            emb = self.encoder(input_ids=ids, attention_mask=mask)["last_hidden_state"]
        else:
            emb = encode_real_tokens(self.encoder, ids, mask)
        return self.apply_padding(emb, mask), mask

    def apply_padding(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """emb (B, N, 768), mask (B, N) bool True = token: pads get the learned embedding ("learned"),
        zeros ("zero") or stay ("none")."""
        if self.mode == "learned":
            pad = self.padding_embedding.to(emb.dtype)[None, None, :].expand_as(emb)
            return torch.where(mask[..., None], emb, pad)
        if self.mode == "zero":
            return emb * mask[..., None].to(emb.dtype)
        return emb
