"""Finding and strictly loading a Stable Audio Open Small checkpoint.

- `resolve_model_dir`: a folder with model_config.json, a Hugging Face cache
  folder (`models--org--name`), or a repo id looked up in the local HF cache
  (engine/backends/neural/hub.py: huggingface_hub's own lookup). Never downloads.
- `load_model`: every checkpoint tensor must match the model exactly: missing,
  unexpected and mis-shaped keys are reported by their official names.
  Weight-normed VAE convs (`weight_g`, `weight_v`) are fused into one weight;
  weights are cast to the requested dtypes as they are read (low peak memory).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...errors import SegueError
from ..neural.hub import locate
from .conditioners import SecondsConditioner
from .config import SaoConfig
from .dit import DiT
from .oobleck import OobleckVAE, pack_conv_weights

REPO_ID = "stabilityai/stable-audio-open-small"
CHECKPOINT_NAMES = ("model.safetensors", "model.ckpt")


class SaoModel(nn.Module):
    """The three checkpointed parts: DiT, VAE, seconds conditioner."""

    def __init__(self, cfg: SaoConfig):
        super().__init__()
        self.cfg = cfg
        self.dit = DiT(cfg.dit)
        self.vae = OobleckVAE(cfg.vae)
        self.seconds = SecondsConditioner(cfg.cond)

    def part_sizes(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in getattr(self, name).state_dict().values())
                for name in ("dit", "vae", "seconds")}


# ---------------------------------------------------------------- locating files

def resolve_model_dir(spec: str | None) -> Path:
    """A folder holding model_config.json: `spec` as a folder, HF cache folder or repo id (local cache only)."""
    return locate(spec, REPO_ID, need=["model_config.json"], pull="segue models pull sao-small",
                  what="Stable Audio Open Small model")


def checkpoint_path(folder: Path) -> Path:
    for name in CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise SegueError("model_not_found", f"{folder} has neither {' nor '.join(CHECKPOINT_NAMES)}")


# ---------------------------------------------------------------- key layout

_PREFIXES = (("dit.", "model.model."), ("vae.", "pretransform.model."),
             ("seconds.", "conditioner.conditioners.seconds_total."))
_RENAMES = ((re.compile(r"\.ff\.proj_in\."), ".ff.ff.0.proj."), (re.compile(r"\.ff\.proj_out\."), ".ff.ff.2."))


@dataclass(frozen=True)
class Slot:
    ours: str            # our state-dict key
    role: str            # "plain" | "wn_g" | "wn_v" (weight-norm halves, fused into `ours`)
    shape: tuple[int, ...]


def official_layout(model: SaoModel) -> dict[str, Slot]:
    """Every key the official checkpoint must hold, mapped to where it goes in our model."""
    conv_weights = {f"{name}.weight" for name, m in model.vae.named_modules(prefix="vae")
                    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))}
    layout: dict[str, Slot] = {}
    for key, t in model.state_dict().items():
        off = key
        for ours, theirs in _PREFIXES:
            if key.startswith(ours):
                off = theirs + key[len(ours):]
                break
        for pat, rep in _RENAMES:
            off = pat.sub(rep, off)
        shape = tuple(t.shape)
        if key in conv_weights:
            base = off[: -len(".weight")]
            layout[base + ".weight_g"] = Slot(key, "wn_g", (shape[0],) + (1,) * (len(shape) - 1))
            layout[base + ".weight_v"] = Slot(key, "wn_v", shape)
        else:
            layout[off] = Slot(key, "plain", shape)
    return layout


def _listing(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(layout: dict[str, Slot], shapes: dict[str, tuple[int, ...]], source: str) -> None:
    if not any(k.startswith("model.model.") for k in shapes):
        raise SegueError("model_invalid", f"{source} is not a Stable Audio checkpoint: no model.model.* keys "
                         f"(it holds e.g. {_listing(shapes, 3)})")
    missing = layout.keys() - shapes.keys()
    extra = shapes.keys() - layout.keys()
    wrong = [f"{k} {list(shapes[k])} (expected {list(layout[k].shape)})"
             for k in sorted(layout.keys() & shapes.keys()) if tuple(shapes[k]) != layout[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if extra:
        problems.append(f"{len(extra)} unexpected key(s): {_listing(extra)}")
    if wrong:
        problems.append(f"{len(wrong)} mis-shaped key(s): {_listing(wrong)}")
    if problems:
        raise SegueError("model_invalid", f"{source} does not match model_config.json: " + "; ".join(problems))


# ---------------------------------------------------------------- reading tensors

class _Reader:
    """Uniform lazy access to safetensors (memory-mapped) or a .ckpt state_dict."""

    def __init__(self, path: Path):
        self.path = path
        try:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                self._f = safe_open(str(path), framework="pt", device="cpu")
                self.shapes = {k: tuple(self._f.get_slice(k).get_shape()) for k in self._f.keys()}
                self._sd = None
            else:
                sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
                sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
                if not isinstance(sd, dict):
                    raise ValueError("no state_dict inside")
                self._sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
                self.shapes = {k: tuple(v.shape) for k, v in self._sd.items()}
        except SegueError:
            raise
        except Exception as e:  # corrupt or foreign file: say which and why
            raise SegueError("model_invalid", f"cannot read checkpoint {path}: {e}") from e

    def get(self, key: str) -> torch.Tensor:
        return self._f.get_tensor(key) if self._sd is None else self._sd[key]

    def dtypes(self) -> set[str]:
        if self._sd is None:
            return {str(self._f.get_slice(k).get_dtype()) for k in self._f.keys()}
        return {str(v.dtype).replace("torch.", "") for v in self._sd.values()}


def fuse_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """w = g * v / ||v||, the norm over every dim but 0 (torch's weight_norm, dim=0)."""
    g, v = g.float(), v.float()
    norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape((-1,) + (1,) * (v.dim() - 1))
    return g * v / norm


def load_model(folder: str | Path, dit_dtype=torch.float32, vae_dtype=torch.float32,
               device: str | torch.device = "cpu") -> tuple[SaoModel, dict]:
    """Build the model from folder/model_config.json and load the checkpoint strictly."""
    folder = Path(folder)
    try:
        model_type = json.loads((folder / "model_config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None     # SaoConfig.from_file names the problem
    if model_type == "diffusion_cond_inpaint":
        raise SegueError("model_invalid", f"{folder} holds a Stable Audio 3 model (model_type diffusion_cond_inpaint), "
                         "not Stable Audio Open: serve it with --backend sa3-small")
    cfg = SaoConfig.from_file(folder / "model_config.json")
    ckpt = checkpoint_path(folder)
    with torch.device("meta"):
        model = SaoModel(cfg)
    layout = official_layout(model)
    reader = _Reader(ckpt)
    check_keys(layout, reader.shapes, str(ckpt))

    dtype_of = lambda ours: dit_dtype if ours.startswith("dit.") else vae_dtype if ours.startswith("vae.") else torch.float32
    tensors: dict[str, torch.Tensor] = {}
    pending_g: dict[str, torch.Tensor] = {}
    for key in sorted(layout):  # weight_g sorts before weight_v
        slot = layout[key]
        t = reader.get(key)
        if slot.role == "wn_g":
            pending_g[slot.ours] = t
            continue
        if slot.role == "wn_v":
            t = fuse_weight_norm(pending_g.pop(slot.ours), t)
        # rotary frequencies stay fp32 so positions are exact whatever the weights' dtype
        dt = torch.float32 if slot.ours.endswith("inv_freq") else dtype_of(slot.ours)
        tensors[slot.ours] = t.to(device=device, dtype=dt)
    model.load_state_dict(tensors, strict=True, assign=True)
    model.eval().requires_grad_(False)
    pack_conv_weights(model.vae)
    meta = {"checkpoint": str(ckpt), "stored_dtypes": sorted(reader.dtypes()), "config": cfg}
    return model, meta


def export_official_state_dict(model: SaoModel, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Our weights under the official keys (weight norm split back into g = ||w||, v = w).
    For writing test and benchmark checkpoints; loading it back is exact."""
    ours = model.state_dict()
    out = {}
    for key, slot in official_layout(model).items():
        w = ours[slot.ours]
        if slot.role == "wn_g":
            w = w.float().reshape(w.shape[0], -1).norm(dim=1).reshape(slot.shape)
        out[key] = (w if dtype is None or slot.ours.endswith("inv_freq") else w.to(dtype)).contiguous().clone()
    return out
