"""Finding and strictly loading `facebook/musicgen-small` (transformers' MusicgenForConditionalGeneration).

- `resolve_model_dir`: a folder in the official layout, a Hugging Face cache folder
  (`models--facebook--musicgen-small`), or a repo id looked up in the local HF cache through the
  shared engine/backends/neural/hub.py (huggingface_hub's own cache functions). Never downloads.
- `check_folder`: the files the official repo holds and we need (config, generation config,
  weights, T5 tokenizer) are there, and config.json describes a mono MusicGen (not Melody,
  whose audio conditioning is broken in transformers >= 4.57, see shared/reference/models.md).
- `load_model`: `from_pretrained(..., local_files_only=True, output_loading_info=True)`; any
  missing, unexpected or mis-shaped tensor is a `model_invalid` error naming the keys, never a
  silently random-initialised layer.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import SegueError
from ..neural import hub
from .prefill import MusicgenPrefillOnce

REPO_ID = "facebook/musicgen-small"
LICENSE = "CC-BY-NC-4.0 (weights: non-commercial use only; https://huggingface.co/facebook/musicgen-small)"
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_NAMES = ("tokenizer.json", "spiece.model")
# what `segue models pull musicgen-small` fetches (one weights file: safetensors when the repo has it)
PULL_FILES = ["config.json", "generation_config.json", "preprocessor_config.json", "special_tokens_map.json",
              "spiece.model", "tokenizer.json", "tokenizer_config.json"]


def _pull_hint() -> str:
    return (f"run `segue models pull musicgen-small` (weights licence {LICENSE}) or pass --model FOLDER "
            "holding config.json, generation_config.json, model.safetensors and the tokenizer files")


def resolve_model_dir(spec: str | None) -> Path:
    """Folder path, HF cache folder (models--facebook--musicgen-small) or repo id -> the folder
    holding config.json, looked up with huggingface_hub's cache functions (engine/backends/neural/hub.py).

    Raises SegueError("model_not_found") naming what was looked for and how to get it."""
    try:
        return hub.locate(spec, REPO_ID, pull="segue models pull musicgen-small", what="musicgen-small")
    except SegueError as e:
        raise SegueError(e.code, f"{e.message} (weights licence: {LICENSE})") from e


def check_folder(folder: Path) -> dict:
    """Refuse a wrong or partial folder before transformers touches it. Returns config.json as a dict."""
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not (folder / "generation_config.json").is_file():
        missing.append("generation_config.json")
    if not any((folder / n).is_file() for n in WEIGHT_NAMES):
        missing.append("model.safetensors (or pytorch_model.bin)")
    if not any((folder / n).is_file() for n in TOKENIZER_NAMES):
        missing.append("tokenizer.json (or spiece.model)")
    if missing:
        raise SegueError("model_invalid", f"{folder} is not a complete musicgen-small folder: missing "
                         f"{', '.join(missing)}; {_pull_hint()}")
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise SegueError("model_invalid", f"{folder / 'config.json'} is not valid JSON: {e}") from e
    kind = cfg.get("model_type")
    if kind != "musicgen":
        hint = " (MusicGen Melody is not supported)" if kind == "musicgen_melody" else ""
        raise SegueError("model_invalid", f"{folder} holds a {kind!r} model, not MusicGen{hint}")
    dec = cfg.get("decoder", {})
    if dec.get("audio_channels", 1) != 1:
        raise SegueError("model_invalid", f"{folder} is a stereo MusicGen; only the mono musicgen-small is supported")
    return cfg


def load_model(folder: Path, dtype, device):
    """-> (MusicgenPrefillOnce, tokenizer). Strict: every checkpoint tensor must match config.json.

    The model is loaded in `dtype` except the EnCodec audio codec, which stays float32 (it runs
    once per request on a few seconds of audio; its convolutions are where bf16 error would be
    audible). Raises SegueError("model_invalid") with the offending keys or the loader's message."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    check_folder(folder)
    hf_logging.set_verbosity_error()        # the official config's pad id 2048 = vocab size warns on every load
    hf_logging.disable_progress_bar()
    try:
        model, info = MusicgenPrefillOnce.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32,
                                                          output_loading_info=True)
    except SegueError:
        raise
    except Exception as e:  # truncated safetensors, mis-shaped tensors, unreadable config
        raise SegueError("model_invalid", f"cannot load MusicGen from {folder}: {type(e).__name__}: {e}") from e
    problems = []
    for what in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in info.get(what) or ())
        if keys:
            more = f" ... and {len(keys) - 6} more" if len(keys) > 6 else ""
            problems.append(f"{len(keys)} {what.replace('_', ' ')}: {', '.join(keys[:6])}{more}")
    if info.get("error_msgs"):
        problems.append("; ".join(map(str, info["error_msgs"]))[:400])
    if problems:
        raise SegueError("model_invalid", f"{folder} does not match its config.json: " + "; ".join(problems))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise SegueError("model_invalid", f"cannot load the T5 tokenizer from {folder}: {type(e).__name__}: {e}") from e
    model = model.to(device=device, dtype=dtype)
    model.audio_encoder.to(dtype=torch.float32)
    model.eval().requires_grad_(False)
    return model, tokenizer


def part_sizes(model) -> dict[str, int]:
    """Parameters per part: text_encoder (T5), audio_encoder (EnCodec), decoder (+ enc_to_dec_proj)."""
    sizes = {k: sum(p.numel() for p in getattr(model, k).parameters())
             for k in ("text_encoder", "audio_encoder", "decoder")}
    proj = getattr(model, "enc_to_dec_proj", None)
    if proj is not None:
        sizes["enc_to_dec_proj"] = sum(p.numel() for p in proj.parameters())
    return sizes
