"""Stable Audio Open Small configuration: `model_config.json` read into dataclasses.

The JSON layout is the one stable-audio-tools (SAT) writes next to its checkpoints.
Only what this implementation supports is accepted; anything else (another model
type, adaLN conditioning, a non-Oobleck VAE ...) is a clear `model_invalid` error
rather than a silently wrong model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import SegueError
from ..neural.hub import read_model_config


@dataclass(frozen=True)
class OobleckConfig:
    """One side (encoder or decoder) of the Oobleck VAE."""
    audio_channels: int = 2            # encoder in_channels / decoder out_channels
    channels: int = 128
    c_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    strides: tuple[int, ...] = (2, 4, 4, 8, 8)
    latent_dim: int = 128              # encoder: 2 x latent (mean, scale); decoder: latent
    use_snake: bool = True
    final_tanh: bool = False           # decoder only


@dataclass(frozen=True)
class VaeConfig:
    encoder: OobleckConfig
    decoder: OobleckConfig
    latent_dim: int = 64
    downsampling_ratio: int = 2048
    io_channels: int = 2
    scale: float = 1.0                 # latents are divided by it after encoding
    model_half: bool = False           # SAT stores/runs the VAE in fp16


@dataclass(frozen=True)
class DitConfig:
    io_channels: int = 64
    embed_dim: int = 1024
    depth: int = 16
    num_heads: int = 8
    cond_token_dim: int = 768
    global_cond_dim: int = 768
    project_cond_tokens: bool = True
    project_global_cond: bool = True
    qk_norm: str = "ln"                # "ln" or "none"
    ff_mult: int = 4
    diffusion_objective: str = "rf_denoiser"

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


@dataclass(frozen=True)
class ConditioningConfig:
    cond_dim: int = 768
    t5_model_name: str = "t5-base"
    t5_max_length: int = 64
    seconds_min: float = 0.0
    seconds_max: float = 256.0
    cross_attention_ids: tuple[str, ...] = ("prompt", "seconds_total")
    global_ids: tuple[str, ...] = ("seconds_total",)


@dataclass(frozen=True)
class SaoConfig:
    sample_rate: int = 44100
    sample_size: int = 524288
    audio_channels: int = 2
    vae: VaeConfig = field(default_factory=lambda: VaeConfig(OobleckConfig(), OobleckConfig(latent_dim=64)))
    dit: DitConfig = field(default_factory=DitConfig)
    cond: ConditioningConfig = field(default_factory=ConditioningConfig)

    @property
    def max_seconds(self) -> float:
        return self.sample_size / self.sample_rate

    @property
    def max_latents(self) -> int:
        return self.sample_size // self.vae.downsampling_ratio

    @classmethod
    def from_dict(cls, d: dict) -> "SaoConfig":
        try:
            return _parse(d)
        except SegueError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise SegueError("model_invalid", f"model_config.json is not a Stable Audio Open Small config: {e!r}") from e

    @classmethod
    def from_file(cls, path: str | Path) -> "SaoConfig":
        return cls.from_dict(read_model_config(path))


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise SegueError("model_invalid", f"unsupported model_config.json: {what}")


def _oobleck(side: dict, kind: str) -> OobleckConfig:
    _need(side.get("type") == "oobleck", f"{kind} type {side.get('type')!r} (only 'oobleck')")
    c = side["config"]
    _need(not c.get("antialias_activation", False), f"{kind} antialias_activation")
    _need(not c.get("use_nearest_upsample", False), f"{kind} use_nearest_upsample")
    return OobleckConfig(
        audio_channels=int(c["in_channels"] if kind == "encoder" else c["out_channels"]),
        channels=int(c.get("channels", 128)), c_mults=tuple(int(v) for v in c["c_mults"]),
        strides=tuple(int(v) for v in c["strides"]), latent_dim=int(c["latent_dim"]),
        use_snake=bool(c.get("use_snake", False)), final_tanh=bool(c.get("final_tanh", True)))


def _parse(d: dict) -> SaoConfig:
    _need(d.get("model_type") == "diffusion_cond", f"model_type {d.get('model_type')!r} (need 'diffusion_cond')")
    m = d["model"]
    pt = m["pretransform"]
    _need(pt.get("type") == "autoencoder", "pretransform type (need 'autoencoder')")
    pc = pt["config"]
    _need((pc.get("bottleneck") or {}).get("type") == "vae", "bottleneck (need 'vae')")
    vae = VaeConfig(encoder=_oobleck(pc["encoder"], "encoder"), decoder=_oobleck(pc["decoder"], "decoder"),
                    latent_dim=int(pc["latent_dim"]), downsampling_ratio=int(pc["downsampling_ratio"]),
                    io_channels=int(pc["io_channels"]), scale=float(pt.get("scale", 1.0)),
                    model_half=bool(pt.get("model_half", False)))
    _need(vae.encoder.latent_dim == 2 * vae.latent_dim, "encoder latent_dim must be 2 x latent_dim (VAE)")

    diff = m["diffusion"]
    _need(diff.get("type") == "dit", f"diffusion type {diff.get('type')!r} (need 'dit')")
    dc = diff["config"]
    _need(dc.get("transformer_type", "continuous_transformer") == "continuous_transformer", "transformer_type")
    _need(dc.get("global_cond_type", "prepend") == "prepend", "global_cond_type (only 'prepend')")
    _need(dc.get("timestep_cond_type", "global") == "global", "timestep_cond_type (only 'global')")
    _need(int(dc.get("patch_size", 1)) == 1, "patch_size (only 1)")
    _need(int(dc.get("input_concat_dim", 0)) == 0 and int(dc.get("prepend_cond_dim", 0)) == 0,
          "input_concat / prepend conditioning")
    attn = dc.get("attn_kwargs", {}) or {}
    _need(attn.get("qk_norm", "none") in ("ln", "none") and not attn.get("differential", False)
          and not attn.get("feat_scale", False), f"attn_kwargs {attn}")
    ff = dc.get("ff_kwargs", {}) or {}
    _need(set(ff) <= {"mult"}, f"ff_kwargs {ff}")
    for k in ("conformer", "layer_scale", "use_sinusoidal_emb", "use_abs_pos_emb", "remove_norms"):
        _need(not dc.get(k, False), k)
    _need(int(dc.get("num_memory_tokens", 0)) == 0, "num_memory_tokens")
    _need(dc.get("rotary_pos_emb", True) is True, "rotary_pos_emb off")
    objective = diff.get("diffusion_objective", "v")
    _need(objective in ("rf_denoiser", "rectified_flow"), f"diffusion_objective {objective!r}")
    dit = DitConfig(io_channels=int(dc["io_channels"]), embed_dim=int(dc["embed_dim"]), depth=int(dc["depth"]),
                    num_heads=int(dc["num_heads"]), cond_token_dim=int(dc.get("cond_token_dim", 0)),
                    global_cond_dim=int(dc.get("global_cond_dim", 0)),
                    project_cond_tokens=bool(dc.get("project_cond_tokens", True)),
                    project_global_cond=bool(dc.get("project_global_cond", True)),
                    qk_norm=attn.get("qk_norm", "none"), ff_mult=int(ff.get("mult", 4)),
                    diffusion_objective=objective)
    _need(dit.io_channels == vae.latent_dim, "DiT io_channels must equal the VAE latent_dim")
    _need(dit.cond_token_dim > 0 and dit.global_cond_dim > 0, "cross-attention and global conditioning")

    cc = m["conditioning"]
    by_id = {c["id"]: c for c in cc["configs"]}
    _need(set(by_id) == {"prompt", "seconds_total"}, f"conditioners {sorted(by_id)} (need prompt, seconds_total)")
    _need(by_id["prompt"]["type"] == "t5", "prompt conditioner must be t5")
    _need(by_id["seconds_total"]["type"] == "number", "seconds_total conditioner must be number")
    t5c, sc = by_id["prompt"]["config"], by_id["seconds_total"]["config"]
    cond = ConditioningConfig(cond_dim=int(cc["cond_dim"]), t5_model_name=t5c.get("t5_model_name", "t5-base"),
                              t5_max_length=int(t5c.get("max_length", 128)),
                              seconds_min=float(sc.get("min_val", 0)), seconds_max=float(sc.get("max_val", 1)),
                              cross_attention_ids=tuple(diff.get("cross_attention_cond_ids", [])),
                              global_ids=tuple(diff.get("global_cond_ids", [])))
    _need(cond.cross_attention_ids == ("prompt", "seconds_total"), "cross_attention_cond_ids (need prompt, seconds_total)")
    _need(cond.global_ids == ("seconds_total",), "global_cond_ids (need seconds_total)")
    _need(dit.global_cond_dim == cond.cond_dim and dit.cond_token_dim == cond.cond_dim, "conditioning dims")
    return SaoConfig(sample_rate=int(d["sample_rate"]), sample_size=int(d["sample_size"]),
                     audio_channels=int(d.get("audio_channels", 2)), vae=vae, dit=dit, cond=cond)


# The published model's configuration, in SAT's JSON layout. Used to write test and
# benchmark checkpoints, and by `segue models check` when a folder lacks the file.
SAO_SMALL_CONFIG: dict = {
    "model_type": "diffusion_cond",
    "sample_size": 524288,
    "sample_rate": 44100,
    "audio_channels": 2,
    "model": {
        "pretransform": {
            "type": "autoencoder",
            "iterate_batch": True,
            "model_half": True,
            "config": {
                "encoder": {"type": "oobleck", "config": {
                    "in_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16],
                    "strides": [2, 4, 4, 8, 8], "latent_dim": 128, "use_snake": True}},
                "decoder": {"type": "oobleck", "config": {
                    "out_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16],
                    "strides": [2, 4, 4, 8, 8], "latent_dim": 64, "use_snake": True, "final_tanh": False}},
                "bottleneck": {"type": "vae"},
                "latent_dim": 64,
                "downsampling_ratio": 2048,
                "io_channels": 2,
            },
        },
        "conditioning": {
            "configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": "t5-base", "max_length": 64}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 256}},
            ],
            "cond_dim": 768,
        },
        "diffusion": {
            "cross_attention_cond_ids": ["prompt", "seconds_total"],
            "global_cond_ids": ["seconds_total"],
            "diffusion_objective": "rf_denoiser",
            "type": "dit",
            "config": {
                "io_channels": 64, "embed_dim": 1024, "depth": 16, "num_heads": 8,
                "cond_token_dim": 768, "global_cond_dim": 768, "project_cond_tokens": True,
                "transformer_type": "continuous_transformer",
                "attn_kwargs": {"qk_norm": "ln"},
            },
        },
        "io_channels": 64,
    },
}


def sao_small_config(**dit_overrides) -> dict:
    """A deep copy of the published config (optionally with DiT fields changed)."""
    d = copy.deepcopy(SAO_SMALL_CONFIG)
    d["model"]["diffusion"]["config"].update(dit_overrides)
    return d
