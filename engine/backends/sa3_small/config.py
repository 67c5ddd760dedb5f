"""Stable Audio 3 small configuration: the official `model_config.json` read into dataclasses.

The JSON layout is the one the official `Stability-AI/stable-audio-3` code (and its PyPI
twin stable-audio-tools 0.0.20, `models/factory.py`, `models/diffusion.py`,
`models/autoencoders.py`) reads; `model_type` is "diffusion_cond_inpaint". Parsing is
strict: anything this implementation does not support (another autoencoder, another
norm, a distribution shift we do not implement ...) is a `model_invalid` SegueError
naming the field, never a silently different model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import SegueError
from ..neural.hub import read_model_config


@dataclass(frozen=True)
class SameConfig:
    """One side of the SAME autoencoder (one resampling stage, as in SAME-S)."""
    io_channels: int = 512          # patched audio channels: audio channels x patch size
    dim: int = 768                  # transformer width = channels x c_mults[0]
    stride: int = 16                # patch frames per latent frame
    depth: int = 6                  # transformer blocks
    dim_heads: int = 64
    chunk_size: int = 32            # attention chunk, in patch frames (2 latent frames)
    chunk_midpoint_shift: bool = True
    conv_mapping: bool = False      # kernel 3 ('same') instead of 1 for the WNConv1d mapping
    mapping_bias: bool = True
    mask_noise: float = 0.0         # std of the noise added to the new tokens (decoder: even in eval)
    ff_mult: int = 3

    @property
    def chunk_tokens(self) -> int:
        """Tokens per attention chunk: chunk_size patch tokens + one token per latent frame."""
        return self.chunk_size + self.chunk_size // self.stride


@dataclass(frozen=True)
class AutoencoderConfig:
    encoder: SameConfig
    decoder: SameConfig
    latent_dim: int = 256
    patch_size: int = 256           # samples per patch frame, per channel
    audio_channels: int = 2
    downsampling_ratio: int = 4096  # audio samples per latent frame
    noise_regularize: bool = True   # SoftNorm decode adds randn * running_std * 1e-3
    auto_scale: bool = True         # SoftNorm has a running_std
    scale: float = 1.0              # pretransform scale: latents are divided by it
    model_half: bool = False
    chunked: bool = False           # encode/decode in chunks of 128 latent frames, overlap 32


@dataclass(frozen=True)
class DitConfig:
    io_channels: int = 256
    embed_dim: int = 1024
    depth: int = 20
    num_heads: int = 16
    cond_token_dim: int = 768
    global_cond_dim: int = 768
    local_add_cond_dim: int = 257   # [inpaint mask (1), masked latents (io_channels)]
    num_memory_tokens: int = 64
    timestep_features_dim: int = 256
    ff_mult: int = 4
    project_cond_tokens: bool = True
    project_global_cond: bool = True

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def rotary_dim(self) -> int:
        return max(self.head_dim // 2, 32)


@dataclass(frozen=True)
class ConditioningConfig:
    cond_dim: int = 768
    text_max_length: int = 256
    text_padding_mode: str = "learned"         # "learned", "zero" or "none"
    text_subfolder: str = "t5gemma-b-b-ul2"    # inside the model folder
    text_repo_id: str = ""
    seconds_min: float = 0.0
    seconds_max: float = 384.0


@dataclass(frozen=True)
class SamplingConfig:
    """The inference schedule's shift: `sampling_distribution_shift_options` of the config, or when it is
    null the official default LogSNRShift(rate 0, anchor -6.2, end 2.0)."""
    shift: str = "logsnr"                       # "logsnr", "full", "flux" or "none"
    shift_args: tuple = (("anchor_logsnr", -6.2), ("rate", 0.0), ("logsnr_end", 2.0))
    mask_padding_attention: bool = True
    use_effective_length_for_schedule: bool = True


@dataclass(frozen=True)
class Sa3Config:
    sample_rate: int = 44100
    sample_size: int = 5292032                 # the longest canvas, in samples (120 s + padding)
    audio_channels: int = 2
    ae: AutoencoderConfig = field(default_factory=lambda: AutoencoderConfig(
        SameConfig(), SameConfig(conv_mapping=True, mask_noise=0.01)))
    dit: DitConfig = field(default_factory=DitConfig)
    cond: ConditioningConfig = field(default_factory=ConditioningConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @property
    def max_latents(self) -> int:
        return self.sample_size // self.ae.downsampling_ratio

    @property
    def latent_align(self) -> int:
        """Canvas latent counts are multiples of this (one encoder attention chunk)."""
        return max(1, self.ae.encoder.chunk_size // self.ae.encoder.stride)

    @classmethod
    def from_dict(cls, d: dict) -> "Sa3Config":
        """Parse a model_config.json dict. Raises SegueError('model_invalid') naming what is wrong."""
        if not isinstance(d, dict):
            raise SegueError("model_invalid", "model_config.json is not a JSON object")
        try:
            return _parse(d)
        except SegueError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise SegueError("model_invalid",
                             f"model_config.json is not a Stable Audio 3 config: missing or bad {e!r}") from e

    @classmethod
    def from_file(cls, path: str | Path) -> "Sa3Config":
        return cls.from_dict(read_model_config(path))


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise SegueError("model_invalid", f"unsupported model_config.json: {what}")


_SAME_KEYS = {"in_channels", "out_channels", "channels", "c_mults", "strides", "latent_dim", "transformer_depths",
              "checkpointing", "differential", "dyt", "dim_heads", "variable_stride", "chunk_size",
              "chunk_midpoint_shift", "mask_noise", "conv_mapping", "sinusoidal_blocks", "sliding_window",
              "conformer", "layer_scale", "causal", "feat_scale", "ff_mult", "mapping_bias", "cross_attn",
              "freeze_backbone"}


def _same(side: dict, kind: str, latent_dim: int) -> SameConfig:
    _need(side.get("type") in ("same", "taae_v2"), f"{kind} type {side.get('type')!r} (only 'same')")
    c = side["config"]
    unknown = set(c) - _SAME_KEYS
    _need(not unknown, f"{kind} config keys {sorted(unknown)}")
    c_mults, strides = list(c.get("c_mults", [])), list(c.get("strides", []))
    depths = list(c.get("transformer_depths", []))
    _need(len(c_mults) == 1 and len(strides) == 1 and len(depths) == 1,
          f"{kind} with {len(c_mults)} stages (only one resampling stage, as SAME-S)")
    _need(c.get("sliding_window") is None, f"{kind} sliding_window")
    _need(bool(c.get("variable_stride", False)), f"{kind} variable_stride false")
    _need(bool(c.get("differential", True)), f"{kind} without differential attention")
    _need(bool(c.get("dyt", True)), f"{kind} without DyT norms")
    for k in ("conformer", "layer_scale", "causal", "feat_scale", "cross_attn"):
        _need(not c.get(k, False), f"{kind} {k}")
    if kind == "decoder":
        sb = list(c.get("sinusoidal_blocks", [0]))
        _need(all(int(v) == 0 for v in sb), f"decoder sinusoidal_blocks {sb}")
    _need(int(c.get("latent_dim", latent_dim)) == latent_dim, f"{kind} latent_dim differs from the autoencoder's")
    stride, chunk = int(strides[0]), int(c.get("chunk_size", 128))
    _need(chunk % stride == 0, f"{kind} chunk_size {chunk} is not a multiple of the stride {stride}")
    io = int(c["in_channels"] if kind == "encoder" else c["out_channels"])
    return SameConfig(io_channels=io, dim=int(c.get("channels", 128)) * int(c_mults[0]), stride=stride,
                      depth=int(depths[0]), dim_heads=int(c.get("dim_heads", 128)), chunk_size=chunk,
                      chunk_midpoint_shift=bool(c.get("chunk_midpoint_shift", False)),
                      conv_mapping=bool(c.get("conv_mapping", False)), mapping_bias=bool(c.get("mapping_bias", True)),
                      mask_noise=float(c.get("mask_noise", 0.0)), ff_mult=int(c.get("ff_mult", 3)))


def _autoencoder(pt: dict) -> AutoencoderConfig:
    _need(pt.get("type") == "autoencoder", f"pretransform type {pt.get('type')!r} (need 'autoencoder')")
    pc = pt["config"]
    latent_dim = int(pc["latent_dim"])
    enc, dec = pc["encoder"], pc["decoder"]
    if enc.get("type") == "oobleck" or dec.get("type") == "oobleck":
        raise SegueError("model_invalid", "this is not a Stable Audio 3 model: its autoencoder is Oobleck "
                         "(a Stable Audio Open config); use the sao-small backend for it")
    encoder, decoder = _same(enc, "encoder", latent_dim), _same(dec, "decoder", latent_dim)
    bn = pc.get("bottleneck") or {}
    _need(bn.get("type") == "softnorm", f"bottleneck {bn.get('type')!r} (need 'softnorm')")
    bc = bn.get("config", {})
    _need(int(bc.get("noise_augment_dim", 0)) == 0, "softnorm noise_augment_dim")
    _need(int(bc.get("dim", latent_dim)) == latent_dim, "softnorm dim differs from latent_dim")
    patch = pc.get("pretransform") or {}
    _need(patch.get("type") == "patched", f"inner pretransform {patch.get('type')!r} (need 'patched')")
    ppc = patch["config"]
    _need(int(ppc.get("oversampling", 1)) == 1 and int(ppc.get("postfilter_channels", 0)) == 0,
          "patched pretransform oversampling / postfilter")
    patch_size, chans = int(ppc["patch_size"]), int(ppc["channels"])
    ae = AutoencoderConfig(encoder=encoder, decoder=decoder, latent_dim=latent_dim, patch_size=patch_size,
                           audio_channels=chans, downsampling_ratio=int(pc["downsampling_ratio"]),
                           noise_regularize=bool(bc.get("noise_regularize", False)),
                           auto_scale=bool(bc.get("auto_scale", False)), scale=float(pt.get("scale", 1.0)),
                           model_half=bool(pt.get("model_half", False)), chunked=bool(pt.get("chunked", False)))
    _need(int(pc.get("io_channels", chans)) == chans, "autoencoder io_channels differs from the patch channels")
    _need(encoder.io_channels == chans * patch_size and decoder.io_channels == chans * patch_size,
          "encoder in_channels / decoder out_channels must be channels x patch_size")
    _need(encoder.stride == decoder.stride and ae.downsampling_ratio == patch_size * encoder.stride,
          "downsampling_ratio must be patch_size x stride")
    return ae


_DIT_KEYS = {"io_channels", "patch_size", "embed_dim", "depth", "num_heads", "cond_token_dim", "global_cond_dim",
             "local_add_cond_dim", "transformer_type", "global_cond_type", "timestep_features_type",
             "timestep_features_dim", "num_memory_tokens", "norm_type", "attn_kwargs", "ff_kwargs",
             "project_cond_tokens", "project_global_cond", "input_concat_dim", "prepend_cond_dim",
             "timestep_cond_type", "timestep_features_logsnr", "rotary_pos_emb", "cross_attn_rotary_pos_emb",
             "use_sinusoidal_emb", "use_abs_pos_emb", "conformer", "layer_scale", "sliding_window"}


def _dit(diff: dict) -> DitConfig:
    _need(diff.get("type") == "dit", f"diffusion type {diff.get('type')!r} (need 'dit')")
    _need(diff.get("diffusion_objective", "v") == "rf_denoiser",
          f"diffusion_objective {diff.get('diffusion_objective')!r} (need 'rf_denoiser')")
    _need(not diff.get("modular_local_cond_configs"), "modular_local_cond_configs")
    dc = diff["config"]
    unknown = set(dc) - _DIT_KEYS
    _need(not unknown, f"DiT config keys {sorted(unknown)}")
    _need(dc.get("transformer_type", "continuous_transformer") == "continuous_transformer", "transformer_type")
    _need(dc.get("global_cond_type") == "adaLN", f"global_cond_type {dc.get('global_cond_type')!r} (need 'adaLN')")
    _need(dc.get("timestep_cond_type", "global") == "global", "timestep_cond_type (only 'global')")
    _need(dc.get("timestep_features_type") == "expo", "timestep_features_type (only 'expo')")
    _need(not dc.get("timestep_features_logsnr", False), "timestep_features_logsnr")
    _need(int(dc.get("patch_size", 1)) == 1, "patch_size (only 1)")
    _need(int(dc.get("input_concat_dim", 0)) == 0 and int(dc.get("prepend_cond_dim", 0)) == 0,
          "input_concat / prepend conditioning")
    _need(dc.get("norm_type") == "rms_norm", f"norm_type {dc.get('norm_type')!r} (need 'rms_norm')")
    attn = dc.get("attn_kwargs") or {}
    _need(attn.get("qk_norm") == "rms" and not attn.get("differential", False) and not attn.get("feat_scale", False)
          and set(attn) <= {"qk_norm", "differential", "feat_scale"}, f"attn_kwargs {attn} (need qk_norm 'rms')")
    ff = dc.get("ff_kwargs") or {}
    _need(set(ff) <= {"mult"}, f"ff_kwargs {ff}")
    for k in ("conformer", "layer_scale", "use_sinusoidal_emb", "use_abs_pos_emb", "cross_attn_rotary_pos_emb"):
        _need(not dc.get(k, False), k)
    _need(dc.get("sliding_window") is None, "sliding_window")
    _need(dc.get("rotary_pos_emb", True) is True, "rotary_pos_emb off")
    cfg = DitConfig(io_channels=int(dc["io_channels"]), embed_dim=int(dc["embed_dim"]), depth=int(dc["depth"]),
                    num_heads=int(dc["num_heads"]), cond_token_dim=int(dc.get("cond_token_dim", 0)),
                    global_cond_dim=int(dc.get("global_cond_dim", 0)),
                    local_add_cond_dim=int(dc.get("local_add_cond_dim", 0)),
                    num_memory_tokens=int(dc.get("num_memory_tokens", 0)),
                    timestep_features_dim=int(dc.get("timestep_features_dim", 256)), ff_mult=int(ff.get("mult", 4)),
                    project_cond_tokens=bool(dc.get("project_cond_tokens", True)),
                    project_global_cond=bool(dc.get("project_global_cond", True)))
    _need(cfg.cond_token_dim > 0 and cfg.global_cond_dim > 0, "cross-attention and global conditioning")
    _need(cfg.project_cond_tokens and cfg.project_global_cond, "project_cond_tokens / project_global_cond false")
    _need(cfg.local_add_cond_dim == cfg.io_channels + 1,
          f"local_add_cond_dim {cfg.local_add_cond_dim} (need io_channels + 1: mask and masked latents)")
    _need(cfg.embed_dim % cfg.num_heads == 0, "embed_dim not divisible by num_heads")
    return cfg


_SHIFT_ARGS = {"logsnr": {"anchor_length", "anchor_logsnr", "rate", "logsnr_end"},
               "full": {"base_shift", "max_shift", "max_length", "min_length", "use_sine"},
               "flux": {"min_length", "max_length", "alpha_min", "alpha_max"}, "none": set()}


def _sampling(diff: dict) -> SamplingConfig:
    opts = diff.get("sampling_distribution_shift_options")
    base = dict(mask_padding_attention=bool(diff.get("mask_padding_attention", False)),
                use_effective_length_for_schedule=bool(diff.get("use_effective_length_for_schedule", False)))
    if opts is None:
        return SamplingConfig(**base)
    kind = opts.get("type", "full")
    _need(kind in _SHIFT_ARGS, f"sampling_distribution_shift_options type {kind!r} (logsnr, full, flux or none)")
    args = {k: v for k, v in opts.items() if k != "type"}
    extra = set(args) - _SHIFT_ARGS[kind]
    _need(not extra, f"sampling_distribution_shift_options keys {sorted(extra)}")
    return SamplingConfig(shift=kind, shift_args=tuple(sorted(args.items())), **base)


def _conditioning(cc: dict, diff: dict) -> ConditioningConfig:
    by_id = {c["id"]: c for c in cc["configs"]}
    _need(set(by_id) == {"prompt", "seconds_total"}, f"conditioners {sorted(by_id)} (need prompt, seconds_total)")
    _need(by_id["prompt"]["type"] == "t5gemma", f"prompt conditioner {by_id['prompt']['type']!r} (need 't5gemma')")
    _need(by_id["seconds_total"]["type"] == "number", "seconds_total conditioner must be 'number'")
    pc, sc = by_id["prompt"].get("config", {}), by_id["seconds_total"].get("config", {})
    _need(pc.get("model_name", "google/t5gemma-b-b-ul2") == "google/t5gemma-b-b-ul2", "prompt model_name")
    _need(not pc.get("project_out", False), "prompt project_out")
    _need(pc.get("padding_mode", "zero") in ("learned", "zero", "none"), f"padding_mode {pc.get('padding_mode')!r}")
    _need(sc.get("fourier_features_type", "learned") == "expo", "seconds_total fourier_features_type (only 'expo')")
    _need(tuple(diff.get("cross_attention_cond_ids", [])) == ("prompt", "seconds_total"),
          "cross_attention_cond_ids (need prompt, seconds_total)")
    _need(tuple(diff.get("global_cond_ids", [])) == ("seconds_total",), "global_cond_ids (need seconds_total)")
    _need(tuple(diff.get("local_add_cond_ids", [])) == ("inpaint_mask", "inpaint_masked_input"),
          "local_add_cond_ids (need inpaint_mask, inpaint_masked_input)")
    for k in ("input_concat_ids", "prepend_cond_ids"):
        _need(not diff.get(k), k)
    return ConditioningConfig(cond_dim=int(cc["cond_dim"]), text_max_length=int(pc.get("max_length", 128)),
                              text_padding_mode=str(pc.get("padding_mode", "zero")),
                              text_subfolder=str(pc.get("subfolder") or ""), text_repo_id=str(pc.get("repo_id") or ""),
                              seconds_min=float(sc.get("min_val", 0)), seconds_max=float(sc.get("max_val", 1)))


def _parse(d: dict) -> Sa3Config:
    mt = d.get("model_type")
    if mt == "diffusion_cond":
        raise SegueError("model_invalid", "this is not a Stable Audio 3 model: model_type 'diffusion_cond' "
                         "(a Stable Audio Open config); SA3 configs say 'diffusion_cond_inpaint'")
    _need(mt == "diffusion_cond_inpaint", f"model_type {mt!r} (need 'diffusion_cond_inpaint')")
    m = d["model"]
    ae = _autoencoder(m["pretransform"])
    diff = m["diffusion"]
    dit = _dit(diff)
    cond = _conditioning(m["conditioning"], diff)
    _need(dit.io_channels == ae.latent_dim and int(m.get("io_channels", dit.io_channels)) == ae.latent_dim,
          "DiT io_channels must equal the autoencoder latent_dim")
    _need(dit.cond_token_dim == cond.cond_dim and dit.global_cond_dim == cond.cond_dim, "conditioning dims")
    cfg = Sa3Config(sample_rate=int(d["sample_rate"]), sample_size=int(d["sample_size"]),
                    audio_channels=int(d.get("audio_channels", 2)), ae=ae, dit=dit, cond=cond,
                    sampling=_sampling(diff))
    _need(cfg.audio_channels == ae.audio_channels, "audio_channels differs from the patch channels")
    return cfg


# The reconstructed Stable Audio 3 small config (the official file exists only on the gated
# Hugging Face repos). Architecture numbers checked against the official ports; see
# docs and ../shared/reference/sa3_small_model_config.json. Used to build test and benchmark
# checkpoints in the official layout.
SA3_SMALL_CONFIG: dict = {
    "model_type": "diffusion_cond_inpaint",
    "sample_rate": 44100,
    "audio_channels": 2,
    "sample_size": 5292032,
    "model": {
        "io_channels": 256,
        "pretransform": {
            "type": "autoencoder",
            "config": {
                "encoder": {"type": "same", "config": {
                    "in_channels": 512, "channels": 128, "c_mults": [6], "strides": [16], "latent_dim": 256,
                    "transformer_depths": [6], "checkpointing": False, "differential": True, "dyt": True,
                    "dim_heads": 64, "variable_stride": True, "chunk_size": 32, "chunk_midpoint_shift": True,
                    "mask_noise": 0.0}},
                "decoder": {"type": "same", "config": {
                    "out_channels": 512, "channels": 128, "c_mults": [6], "strides": [16], "latent_dim": 256,
                    "transformer_depths": [6], "sinusoidal_blocks": [0], "checkpointing": False,
                    "differential": True, "dyt": True, "dim_heads": 64, "variable_stride": True,
                    "chunk_size": 32, "chunk_midpoint_shift": True, "conv_mapping": True, "mask_noise": 0.01}},
                "bottleneck": {"type": "softnorm", "config": {
                    "dim": 256, "noise_augment_dim": 0, "noise_regularize": True, "auto_scale": True,
                    "freeze": True}},
                "pretransform": {"type": "patched", "config": {"patch_size": 256, "channels": 2}},
                "latent_dim": 256,
                "downsampling_ratio": 4096,
                "io_channels": 2,
            },
        },
        "conditioning": {
            "cond_dim": 768,
            "configs": [
                {"id": "prompt", "type": "t5gemma", "config": {
                    "max_length": 256, "padding_mode": "learned",
                    "repo_id": "stabilityai/stable-audio-3-small-music", "subfolder": "t5gemma-b-b-ul2"}},
                {"id": "seconds_total", "type": "number", "config": {
                    "min_val": 0, "max_val": 384, "fourier_features_type": "expo"}},
            ],
        },
        "diffusion": {
            "type": "dit",
            "diffusion_objective": "rf_denoiser",
            "cross_attention_cond_ids": ["prompt", "seconds_total"],
            "global_cond_ids": ["seconds_total"],
            "local_add_cond_ids": ["inpaint_mask", "inpaint_masked_input"],
            "distribution_shift_options": {"type": "full", "min_length": 256, "max_length": 4096},
            "sampling_distribution_shift_options": None,
            "config": {
                "io_channels": 256, "patch_size": 1, "embed_dim": 1024, "depth": 20, "num_heads": 16,
                "cond_token_dim": 768, "global_cond_dim": 768, "local_add_cond_dim": 257,
                "transformer_type": "continuous_transformer", "global_cond_type": "adaLN",
                "timestep_features_type": "expo", "timestep_features_dim": 256, "num_memory_tokens": 64,
                "norm_type": "rms_norm", "attn_kwargs": {"qk_norm": "rms"},
            },
            "mask_padding_attention": True,
            "use_effective_length_for_schedule": True,
        },
    },
}


def sa3_small_config() -> dict:
    """A deep copy of the reconstructed Stable Audio 3 small config (JSON layout)."""
    return copy.deepcopy(SA3_SMALL_CONFIG)
