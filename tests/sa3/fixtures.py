"""Test helpers for Stable Audio 3 small: tiny configs, a stand-in T5Gemma, official-layout folders.

Reusable by backend tests (helper `neural`): `write_tiny_sa3_folder(root)` builds
root/model_config.json + root/model.safetensors (official key names, random weights)
+ root/t5gemma-b-b-ul2/ (a tiny random T5GemmaEncoderModel 768 wide with a byte-fallback
Gemma tokenizer, built offline), loadable by `load_sa3(root)`.

The oracle (stable-audio-tools 0.0.20) never runs in this process: see tests/sa3/oracle.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from segue.engine.backends.sa3_small.config import sa3_small_config

T5_SUBFOLDER = "t5gemma-b-b-ul2"
WORDS = ["▁drum", "▁drums", "▁loop", "▁bass", "▁piano", "▁house", "▁techno", "▁beat", "▁120", "▁bpm",
         "▁warm", "▁dark", "▁kick", "▁snare", "▁hat", "▁a", "▁the"]


def tiny_config() -> dict:
    """The SA3 small layout at toy widths, with the real rates (44.1 kHz, patch 256, 16 patches
    per latent frame: 4096 samples per latent frame) so the canvas arithmetic is the real one.
    Prompt width stays 768 (the official T5Gemma conditioner hard-codes it)."""
    d = sa3_small_config()
    pc = d["model"]["pretransform"]["config"]
    for side in ("encoder", "decoder"):
        pc[side]["config"].update(channels=16, c_mults=[4], latent_dim=8, transformer_depths=[2], dim_heads=32)
    pc["bottleneck"]["config"]["dim"] = 8
    pc["latent_dim"] = 8
    d["model"]["io_channels"] = 8
    dc = d["model"]["diffusion"]["config"]
    dc.update(io_channels=8, embed_dim=128, depth=2, num_heads=2, local_add_cond_dim=9, num_memory_tokens=4)
    return d


def make_t5gemma_folder(folder: Path, layers: int = 1, seed: int = 0) -> Path:
    """A stand-in `t5gemma-b-b-ul2` folder (hidden size 768, tiny otherwise) that AutoTokenizer and
    T5GemmaEncoderModel load offline. Norm weights are randomised (they initialise to 0 = scale 1)."""
    from transformers import GemmaTokenizer, T5GemmaConfig, T5GemmaEncoderModel, T5GemmaModuleConfig

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for w in WORDS:
        vocab[w] = len(vocab)
    tok = GemmaTokenizer(vocab=vocab, merges=[], padding_side="right", add_bos_token=False, add_eos_token=False)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(folder))
    module = dict(vocab_size=len(vocab), hidden_size=768, intermediate_size=64, num_hidden_layers=layers,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=512,
                  sliding_window=64, query_pre_attn_scalar=64)
    cfg = T5GemmaConfig(encoder=T5GemmaModuleConfig(**module), decoder=T5GemmaModuleConfig(**module),
                        vocab_size=len(vocab))
    torch.manual_seed(seed)
    cfg.is_encoder_decoder = False
    model = T5GemmaEncoderModel(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    model.save_pretrained(str(folder))
    return folder


def randomize_(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights everywhere, including the layers the official init zeroes (attention and
    feed-forward outputs, the last local-embedding layer, the pre/post convs), so every path
    carries signal. Norm gains near 1, DyT alphas positive, SoftNorm std positive."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.dtype.is_floating_point or p.numel() == 0:
                continue
            r = torch.randn(p.shape, generator=g)
            if name.endswith("running_std"):
                val = 0.5 + r.abs() * 0.5
            elif name.endswith("weight_g"):
                val = 0.5 + r.abs() * 0.5
            elif name.endswith(".alpha"):
                val = 1.0 + 0.3 * r.abs()
            elif name.endswith((".gamma", "scaling_factor")) or ".gamma" in name:
                val = 1 + 0.1 * r
            elif name.endswith(("beta", ".bias")) or p.dim() == 1:
                val = 0.1 * r
            else:
                fan_in = max(1, p[0].numel())
                val = r * (0.8 / fan_in ** 0.5)
            p.copy_(val.to(p.dtype))


def write_model_folder(folder: Path, cfg: dict, state: dict, t5_folder: Path | None = None) -> Path:
    """model_config.json + model.safetensors (+ a copy of the T5Gemma stand-in in its subfolder)."""
    import shutil

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_config.json").write_text(json.dumps(cfg, indent=1))
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    if t5_folder is not None and t5_folder != folder / T5_SUBFOLDER:
        shutil.copytree(t5_folder, folder / T5_SUBFOLDER, dirs_exist_ok=True)
    return folder


def write_tiny_sa3_folder(root: Path, cfg: dict | None = None, seed: int = 0) -> Path:
    """A complete tiny SA3 model folder in the official layout (random weights, written by our own
    model's exporter): root/model_config.json, root/model.safetensors, root/t5gemma-b-b-ul2/."""
    from segue.engine.backends.sa3_small.config import Sa3Config
    from segue.engine.backends.sa3_small.loading import export_official_state_dict
    from segue.engine.backends.sa3_small.model import SA3Model

    cfg = copy.deepcopy(cfg or tiny_config())
    torch.manual_seed(seed)
    model = SA3Model(Sa3Config.from_dict(cfg))
    randomize_(model, seed)
    make_t5gemma_folder(root / T5_SUBFOLDER, seed=seed)
    return write_model_folder(root, cfg, export_official_state_dict(model))


# ---------------------------------------------------------------- the oracle (its own process)

def sat020_target() -> Path:
    """Where scripts/test.sh installs stable-audio-tools 0.0.20 (`--target`): $SEGUE_SAT020, else
    <venv>/sat-0.0.20."""
    import os
    import sys

    return Path(os.environ.get("SEGUE_SAT020") or Path(sys.prefix) / "sat-0.0.20")


def sat020_available() -> bool:
    import importlib.util

    t = sat020_target()
    return (t / "stable_audio_tools" / "__init__.py").is_file() and all(
        importlib.util.find_spec(m) is not None for m in ("einops", "einops_exts", "alias_free_torch"))


def run_oracle(folder: Path, cfg: dict, seed: int = 0, randomize: bool = True, refs: bool = False,
               timeout: float = 900) -> dict:
    """Build the official model for cfg with stable-audio-tools 0.0.20 in a subprocess; it writes
    folder/model_config.json, folder/model.safetensors (+ folder/refs.pt). folder must already hold
    the T5Gemma stand-in subfolder. Returns {"tensors", "params"} of the written state dict."""
    import subprocess
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    job = folder.parent / f"{folder.name}_job.json"
    job.write_text(json.dumps({"config": cfg, "folder": str(folder), "seed": seed, "randomize": randomize,
                               "refs": refs}))
    here = Path(__file__).resolve()
    r = subprocess.run([sys.executable, str(here.parent / "oracle.py"), str(sat020_target()), str(job)],
                       capture_output=True, text=True, timeout=timeout, cwd=str(here.parents[2]))
    if r.returncode != 0:
        raise RuntimeError(f"oracle failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
