"""Strictly loading a Stable Audio 3 small model folder.

A folder holds `model_config.json`, `model.safetensors` (or `model.ckpt` with a
`state_dict`), and the T5Gemma encoder in the subfolder the config names
(`t5gemma-b-b-ul2`). The official loader (`copy_state_dict` in stable-audio-tools 0.0.20 /
stable-audio-3) silently skips missing and mis-shaped keys; here every missing,
unexpected or mis-shaped key is a SegueError naming it, and a checkpoint of another
model (e.g. Stable Audio Open) says so.

Official key layout -> ours: `model.model.*` -> `dit.*`, `pretransform.model.*` ->
`autoencoder.*` (`encoder.layers.0/2` -> `encoder.resampler/to_latent`, `decoder.layers.1/3`
-> `decoder.from_latent/resampler`), `conditioner.conditioners.seconds_total.embedder.embedding.1`
-> `seconds.proj`, `conditioner.conditioners.prompt.padding_embedding` -> `prompt.padding_embedding`;
feed-forwards `ff.ff.0.proj` / `ff.ff.2` -> `ff.proj_in` / `ff.proj_out`; weight-normed
convs (`weight_g`, `weight_v`, norm over all dims but 0) are fused into one `weight`.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...errors import SegueError
from .config import Sa3Config
from .model import SA3Model

CHECKPOINT_NAMES = ("model.safetensors", "model.ckpt")
T5GEMMA_SUBFOLDER = "t5gemma-b-b-ul2"

# (official prefix, our prefix), longest first where they nest
_PREFIXES = (
    ("model.model.", "dit."),
    ("pretransform.model.encoder.layers.0.", "autoencoder.encoder.resampler."),
    ("pretransform.model.encoder.layers.2.", "autoencoder.encoder.to_latent."),
    ("pretransform.model.decoder.layers.1.", "autoencoder.decoder.from_latent."),
    ("pretransform.model.decoder.layers.3.", "autoencoder.decoder.resampler."),
    ("pretransform.model.bottleneck.", "autoencoder.bottleneck."),
    ("conditioner.conditioners.seconds_total.embedder.embedding.1.", "seconds.proj."),
    ("conditioner.conditioners.prompt.padding_embedding", "prompt.padding_embedding"),
)
_INNER = ((".ff.ff.0.proj.", ".ff.proj_in."), (".ff.ff.2.", ".ff.proj_out."))
_WN = re.compile(r"^(.*\.mapping)\.weight_([gv])$")


def official_to_ours(key: str) -> str | None:
    """Our parameter name for an official key (weight_g/weight_v map to the fused weight); None if unknown."""
    m = _WN.match(key)
    if m:
        key = m.group(1) + ".weight"
    for off, ours in _PREFIXES:
        if key.startswith(off):
            key = ours + key[len(off):]
            for a, b in _INNER:
                key = key.replace(a, b)
            return key
    return None


def ours_to_official(key: str) -> str:
    for off, ours in _PREFIXES:
        if key.startswith(ours):
            key = off + key[len(ours):]
            for a, b in _INNER:
                key = key.replace(b, a)
            return key
    raise KeyError(key)


def _is_wn(our_key: str) -> bool:
    return our_key.endswith(".mapping.weight")


def official_shapes(model: SA3Model) -> dict[str, tuple[int, ...]]:
    """Every key the official checkpoint must hold for this config, with its shape."""
    out = {}
    for k, v in model.state_dict().items():
        off = ours_to_official(k)
        if _is_wn(k):
            base = off[: -len(".weight")]
            out[base + ".weight_g"] = (v.shape[0],) + (1,) * (v.dim() - 1)
            out[base + ".weight_v"] = tuple(v.shape)
        else:
            out[off] = tuple(v.shape)
    return out


def export_official_state_dict(model: SA3Model) -> dict[str, torch.Tensor]:
    """Our weights under the official names (weight norm split back: g = |w|, v = w), e.g. to write
    test checkpoints in the official layout."""
    out = {}
    for k, v in model.state_dict().items():
        off = ours_to_official(k)
        if _is_wn(k):
            base = off[: -len(".weight")]
            g = v.reshape(v.shape[0], -1).norm(dim=1)
            out[base + ".weight_g"] = g.reshape((v.shape[0],) + (1,) * (v.dim() - 1))
            out[base + ".weight_v"] = v.clone()
        else:
            out[off] = v.clone()
    return {k: v.detach().contiguous() for k, v in out.items()}


def find_checkpoint(folder: Path) -> Path:
    for name in CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise SegueError("model_not_found", f"{folder} has neither {' nor '.join(CHECKPOINT_NAMES)}")


class _Checkpoint:
    """Lazy access to a checkpoint's tensors (safetensors are read one tensor at a time)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                self._f = safe_open(str(path), framework="pt")
                self.shapes = {k: tuple(self._f.get_slice(k).get_shape()) for k in self._f.keys()}
                self._sd = None
            else:
                sd = torch.load(str(path), map_location="cpu", weights_only=True)
                sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
                if not isinstance(sd, dict):
                    raise ValueError("no state_dict inside")
                self._sd = sd
                self.shapes = {k: tuple(v.shape) for k, v in sd.items()}
        except SegueError:
            raise
        except Exception as e:  # noqa: BLE001 - any reader failure is a bad file for the user
            raise SegueError("model_invalid", f"cannot read checkpoint {path}: {e}") from e

    def get(self, key: str) -> torch.Tensor:
        return self._f.get_tensor(key) if self._sd is None else self._sd[key]


_SA3_MARKERS = ("model.model.transformer.memory_tokens", "pretransform.model.bottleneck.running_std",
                "pretransform.model.bottleneck.scaling_factor", "conditioner.conditioners.prompt.padding_embedding")


def _not_sa3_message(path: Path, keys: set[str]) -> str | None:
    if any(k in keys for k in _SA3_MARKERS) or any(".to_local_embed." in k for k in keys):
        return None
    hint = ""
    if any(k.startswith("pretransform.model.encoder.layers.0.weight_") for k in keys) or \
            "conditioner.conditioners.seconds_total.embedder.embedding.0.weights" in keys:
        hint = " (it looks like a Stable Audio Open checkpoint: use the sao-small backend)"
    return f"{path} is not an SA3 checkpoint{hint}: it has none of the Stable Audio 3 keys such as {_SA3_MARKERS[0]}"


def _listing(keys, shapes=None, n=5) -> str:
    keys = sorted(keys)
    items = [f"{k} {shapes[k]}" if shapes else k for k in keys[:n]]
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(items) + more


def check_keys(expected: dict, found: dict, source: Path) -> None:
    """Raise SegueError('model_invalid') naming missing, unexpected and mis-shaped keys."""
    msg = _not_sa3_message(source, set(found))
    if msg:
        raise SegueError("model_invalid", msg)
    problems = []
    missing = set(expected) - set(found)
    extra = set(found) - set(expected)
    shaped = [k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k])]
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if extra:
        problems.append(f"{len(extra)} unexpected key(s): {_listing(extra)}")
    if shaped:
        problems.append(f"{len(shaped)} mis-shaped key(s): " + ", ".join(
            f"{k} is {tuple(found[k])}, model_config.json needs {tuple(expected[k])}" for k in sorted(shaped)[:5]))
    if problems:
        raise SegueError("model_invalid", f"{source} does not match model_config.json: " + "; ".join(problems))


def load_state(model: SA3Model, ckpt_path: Path) -> None:
    """Strictly copy the checkpoint at ckpt_path into model, one tensor at a time (cast to each part's
    dtype, weight norm fused), so peak memory stays near one model. Raises SegueError as check_keys."""
    ck = _Checkpoint(ckpt_path)
    check_keys(official_shapes(model), ck.shapes, ckpt_path)
    own = model.state_dict()                       # tensors share storage with the parameters
    done = set()
    with torch.no_grad():
        for k in ck.shapes:
            if k.endswith(".weight_v"):
                continue
            ours = official_to_ours(k)
            if k.endswith(".weight_g"):
                g = ck.get(k).float()
                v = ck.get(k[: -len("_g")] + "_v").float()
                t = g * v / v.reshape(v.shape[0], -1).norm(dim=1).reshape(g.shape)
            else:
                t = ck.get(k)
            own[ours].copy_(t)
            done.add(ours)
    if done != set(own):                           # cannot happen after check_keys; kept as a guard
        raise SegueError("internal", f"parameters left unloaded: {_listing(set(own) - done)}")


def load_sa3(model_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             ae_dtype: torch.dtype = torch.float32, text_encoder: bool = True,
             text_dtype: torch.dtype = torch.float32) -> SA3Model:
    """Load a Stable Audio 3 small folder strictly -> SA3Model in eval mode on `device`.

    dtype: the DiT's dtype; ae_dtype: SAME-S's (fp32 by default: differential attention cancels
    badly in fp16); text_encoder: also load T5Gemma from the config's subfolder.
    Raises SegueError: 'model_not_found' (no folder, config or checkpoint), 'model_invalid'
    (unsupported config, another model's checkpoint, missing/unexpected/mis-shaped keys),
    'text_encoder_missing' (the T5Gemma subfolder or its files are absent).
    """
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise SegueError("model_not_found", f"model folder {folder} does not exist")
    cfg = Sa3Config.from_file(folder / "model_config.json")
    ckpt = find_checkpoint(folder)
    with torch.device("meta"):                       # no random init: every tensor comes from the checkpoint
        model = SA3Model(cfg)
    model.dit.to(dtype)
    model.autoencoder.to(ae_dtype)
    model.to_empty(device="cpu")
    load_state(model, ckpt)
    if text_encoder:
        model.prompt.load_encoder(folder / (cfg.cond.text_subfolder or T5GEMMA_SUBFOLDER), device, text_dtype)
    return model.to(device).eval().requires_grad_(False)
