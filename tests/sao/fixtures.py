"""Test helpers for the sao-small backend: the SAT oracle, tiny configs, stand-in T5.

stable-audio-tools (SAT) 0.0.19 is installed without its dependencies; the few
modules it imports but these tests never run (torchaudio, alias_free_torch,
einops_exts, k_diffusion) are stood in for here, only when they are absent.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

from segue.engine.backends.sao_small.config import sao_small_config


_SAT_MODULES = ("stable_audio_tools.models.autoencoders", "stable_audio_tools.models.conditioners",
                "stable_audio_tools.models.diffusion", "stable_audio_tools.inference.generation")


def install_sat_stubs() -> None:
    """Import the SAT modules the tests use with stand-ins for absent imports, then remove the
    stand-ins again so other libraries (transformers probes for torchaudio) never see them."""
    if all(m in sys.modules for m in _SAT_MODULES):
        return

    class _Unavailable:
        def __init__(self, *a, **k):
            raise RuntimeError("stand-in module: not available in tests")

    added = []

    def stub(name, **attrs):
        if name in sys.modules or (name.split(".")[0] not in added
                                   and importlib.util.find_spec(name.split(".")[0]) is not None):
            return None
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        added.append(name)
        return m

    ta = stub("torchaudio")
    if ta is not None:
        ta.transforms = stub("torchaudio.transforms", Resample=_Unavailable)
    stub("alias_free_torch", Activation1d=_Unavailable)
    stub("einops_exts", rearrange_many=None)
    stub("k_diffusion")
    try:
        for m in _SAT_MODULES:
            importlib.import_module(m)
    finally:
        for name in added:
            sys.modules.pop(name, None)


def sat_available() -> bool:
    return importlib.util.find_spec("stable_audio_tools") is not None and importlib.util.find_spec("einops") is not None


def tiny_config() -> dict:
    """Same structure as the published config at toy sizes (partial rotary kept: head 64, rotary 32)."""
    d = sao_small_config(io_channels=8, embed_dim=128, depth=2, num_heads=2, cond_token_dim=16, global_cond_dim=16)
    pc = d["model"]["pretransform"]
    pc["model_half"] = False
    pc["config"]["encoder"]["config"].update(channels=4, c_mults=[1, 2], strides=[2, 4], latent_dim=16)
    pc["config"]["decoder"]["config"].update(channels=4, c_mults=[1, 2], strides=[2, 4], latent_dim=8)
    pc["config"]["latent_dim"] = 8
    pc["config"]["downsampling_ratio"] = 8
    d["model"]["conditioning"]["cond_dim"] = 16
    d["model"]["conditioning"]["configs"][0]["config"]["max_length"] = 6
    d["model"]["io_channels"] = 8
    d["sample_size"] = 8 * 32
    return d


def build_sat_model(cfg: dict, seed: int = 0, randomize: bool = True):
    """SAT's ConditionedDiffusionModelWrapper for cfg, without the T5 conditioner
    (T5 holds no checkpoint weights; tests pass prompt embeddings directly)."""
    install_sat_stubs()
    from stable_audio_tools.models.diffusion import create_diffusion_cond_from_config

    c = copy.deepcopy(cfg)
    c["model"]["conditioning"]["configs"] = [x for x in c["model"]["conditioning"]["configs"] if x["type"] != "t5"]
    torch.manual_seed(seed)
    model = create_diffusion_cond_from_config(c).eval().requires_grad_(False)
    if randomize:
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if p.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                continue
            r = torch.randn(p.shape, generator=g)
            if name.endswith("weight_g"):
                val = 0.5 + r.abs() * 0.5
            elif name.endswith((".gamma", "norm.weight")):
                val = 1 + 0.1 * r
            elif name.endswith((".alpha", ".beta")):
                val = 0.3 * r
            else:
                val = r * (0.5 / max(1, p[0].numel()) ** 0.5 if p.dim() > 1 else 0.1)
            p.data.copy_(val.to(p.dtype))
    return model


def write_model_folder(folder: Path, cfg: dict, state: dict, fmt: str = "safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_config.json").write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().contiguous() for k, v in state.items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(folder / "model.safetensors"))
    else:
        torch.save({"state_dict": state}, str(folder / "model.ckpt"))
    return folder


def make_t5_tokenizer(folder: Path, words: list[str]):
    """A T5TokenizerFast over a tiny Unigram vocabulary: <pad>, </s>, <unk>, then `words` (saved in folder
    as tokenizer.json + config). -> (tokenizer, vocabulary size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5TokenizerFast

    words = ["<pad>", "</s>", "<unk>"] + list(words)
    vocab = [(w, -float(i) / 10 - 1.0) for i, w in enumerate(words)]
    vocab[0] = ("<pad>", 0.0)
    tk = Tokenizer(models.Unigram(vocab, unk_id=2))
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    tok = T5TokenizerFast(tokenizer_object=tk, extra_ids=0, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(folder))
    return tok, len(words)


def make_t5_folder(folder: Path, d_model: int = 16, layers: int = 1, heads: int = 2, d_ff: int = 32,
                   seed: int = 0) -> Path:
    """A stand-in t5 folder that AutoTokenizer / T5EncoderModel load offline (random weights)."""
    from transformers import T5Config, T5EncoderModel

    _, n_words = make_t5_tokenizer(folder, [f"\u2581{w}" for w in
                                           "a the drum drums bass piano loop house techno beat guitar synth bpm 120 "
                                           "90 warm dark bright".split()] + list("abcdefghijklmnopqrstuvwxyz0123456789"))
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=n_words, d_model=d_model, d_kv=d_model // heads, d_ff=d_ff, num_layers=layers,
                   num_heads=heads, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    T5EncoderModel(cfg).save_pretrained(str(folder))
    return folder


def serving_config() -> dict:
    """Tiny, but with a usable window for backend tests: 32x downsampling, 0.74 s window."""
    d = tiny_config()
    pc = d["model"]["pretransform"]["config"]
    pc["encoder"]["config"]["strides"] = [4, 8]
    pc["decoder"]["config"]["strides"] = [4, 8]
    pc["downsampling_ratio"] = 32
    d["sample_size"] = 32 * 1024
    return d


def write_serving_folders(root: Path) -> Path:
    """root/model (tiny serving-size checkpoint, small random weights, official keys) and root/t5."""
    from segue.engine.backends.sao_small.config import SaoConfig
    from segue.engine.backends.sao_small.loading import SaoModel, export_official_state_dict

    cfg = serving_config()
    torch.manual_seed(0)
    model = SaoModel(SaoConfig.from_dict(cfg))
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    write_model_folder(root / "model", cfg, export_official_state_dict(model))
    make_t5_folder(root / "t5", d_model=16)
    return root


def raising_compile_backend(gm, example_inputs):
    """A torch.compile backend that fails lazily at the first call, as on a machine without a
    working compiler (issue 8, fault 6). Named on the command line as
    `--option compile_backend=tests.sao.fixtures:raising_compile_backend`."""
    raise RuntimeError("no working C compiler on this machine (test backend)")
