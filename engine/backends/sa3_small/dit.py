"""The diffusion transformer (DiT) of Stable Audio 3 small, written from scratch.

Follows the official `Stability-AI/stable-audio-3` `stable_audio_3/models/dit.py` and
`models/transformer.py` (the same code as stable-audio-tools 0.0.20). Published sizes:
latents x (B, 256, T), embed 1024, 20 blocks of 16 heads x 64. Sequence inside the
transformer: [64 learned memory tokens, T latent frames]. Each block:

    h = rms(x) * (1 + scale_sa) + shift_sa;  x += self_attn(h) * sigmoid(1 - gate_sa)
    x += cross_attn(rms(x), context)                       # not modulated, no mask
    x += left_pad(to_local_embed([mask, latents * mask]))  # inpainting conditioning
    h = rms(x) * (1 + scale_ff) + shift_ff;  x += ff(h) * sigmoid(1 - gate_ff)

scale/shift/gate come from the global embedding (seconds + timestep) through
`global_cond_embedder`, plus each block's learned `to_scale_shift_gate`. Rotary
embeddings rotate the first 32 of 64 head features, positions counted over the
whole sequence including the memory tokens, in self-attention only. The network
predicts a velocity v; the sampler's denoised estimate is x - t * v.

Parameter names equal the checkpoint's `model.model.*` names except the feed-forward
pair (`ff.proj_in` / `ff.proj_out` here, `ff.ff.0.proj` / `ff.ff.2` there): see loading.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DitConfig


class RMSNorm(nn.Module):
    """RMS norm with a learned gain `gamma` (no bias)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, x.shape[-1:], self.gamma, self.eps)


def expo_fourier_features(t: torch.Tensor, dim: int, min_freq: float = 0.5, max_freq: float = 1e4) -> torch.Tensor:
    """Fourier features with exponentially spaced frequencies, computed in fp32.

    t (B,) -> (B, dim) = [cos(2 pi t f), sin(2 pi t f)] for dim/2 frequencies f from
    min_freq to max_freq (log-spaced). Returned in t's dtype. Official: `ExpoFourierFeatures`
    in stable_audio_3/models/blocks.py.
    """
    half = dim // 2
    ramp = torch.linspace(0, 1, half, device=t.device, dtype=torch.float32)
    freqs = torch.exp(ramp * (math.log(max_freq) - math.log(min_freq)) + math.log(min_freq))
    args = t.float()[:, None] * freqs * 2 * math.pi
    return torch.cat([args.cos(), args.sin()], dim=-1).to(t.dtype)


class Rotary(nn.Module):
    """Rotary angles (base 10000) for the first `dim` features of each head; `inv_freq` is
    a checkpoint buffer, so the loaded values are the ones used."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, n: int) -> torch.Tensor:
        pos = torch.arange(n, device=self.inv_freq.device, dtype=torch.float32)
        f = torch.outer(pos, self.inv_freq.float())
        return torch.cat([f, f], dim=-1)                  # (n, dim): both halves share angles


def apply_rotary(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate the first freqs.shape[-1] features of x (..., N, D) in fp32; the rest pass through."""
    d = freqs.shape[-1]
    xr, rest = x[..., :d].float(), x[..., d:].float()
    x1, x2 = xr.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    out = xr * freqs.cos() + rotated * freqs.sin()
    return torch.cat([out, rest], dim=-1)


def _heads(t: torch.Tensor, h: int) -> torch.Tensor:
    b, n, _ = t.shape
    return t.view(b, n, h, -1).transpose(1, 2)


class SelfAttention(nn.Module):
    """Fused-qkv self-attention with per-head RMS qk-norm (eps 1e-6) and partial rotary.

    `keep` (B, N) bool marks valid positions: padded positions have their values
    zeroed (their keys still take softmax weight), which is what the official code
    does on CPU and on CUDA without flash-attn (`Attention.apply_attn`).
    """

    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.heads = dim // head_dim
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.q_norm = RMSNorm(head_dim, eps=1e-6)
        self.k_norm = RMSNorm(head_dim, eps=1e-6)

    def forward(self, x, freqs, keep=None):
        q, k, v = (_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rotary(q, freqs).to(v.dtype), apply_rotary(k, freqs).to(v.dtype)
        if keep is not None:
            v = v * keep[:, None, :, None].to(v.dtype)
        out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class CrossAttention(nn.Module):
    """Attention from the latent sequence to the conditioning tokens (no mask, no rotary)."""

    def __init__(self, dim: int, head_dim: int, context_dim: int):
        super().__init__()
        self.heads, self.kv_heads = dim // head_dim, context_dim // head_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim, context_dim * 2, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.q_norm = RMSNorm(head_dim, eps=1e-6)
        self.k_norm = RMSNorm(head_dim, eps=1e-6)

    def keys_values(self, context):
        """(k, v) for the context tokens (B, S, context_dim), k already normalised: the same at every
        sampling step, so a trajectory computes them once."""
        k, v = (_heads(t, self.kv_heads) for t in self.to_kv(context).chunk(2, dim=-1))
        if self.kv_heads != self.heads:
            k, v = (t.repeat_interleave(self.heads // self.kv_heads, dim=1) for t in (k, v))
        return self.k_norm(k), v

    def forward(self, x, kv):
        q = self.q_norm(_heads(self.to_q(x), self.heads))
        k, v = kv
        out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class FeedForward(nn.Module):
    """GLU: value * SiLU(gate) from one projection (with bias), then back to dim."""

    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.proj_in = nn.Linear(dim, dim * mult * 2)
        self.proj_out = nn.Linear(dim * mult, dim)

    def forward(self, x):
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(value * F.silu(gate))


def _mlp(d_in: int, d_out: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=bias), nn.SiLU(), nn.Linear(d_out, d_out, bias=bias))


class Block(nn.Module):
    def __init__(self, cfg: DitConfig):
        super().__init__()
        d, hd = cfg.embed_dim, cfg.head_dim
        self.pre_norm = RMSNorm(d, eps=1e-5)
        self.self_attn = SelfAttention(d, hd)
        self.cross_attend_norm = RMSNorm(d, eps=1e-5)
        self.cross_attn = CrossAttention(d, hd, d)
        self.ff_norm = RMSNorm(d, eps=1e-5)
        self.ff = FeedForward(d, cfg.ff_mult)
        self.to_scale_shift_gate = nn.Parameter(torch.zeros(6 * d))
        self.to_local_embed = nn.Sequential(nn.Linear(cfg.local_add_cond_dim, d), nn.SiLU(), nn.Linear(d, d))

    def prepare(self, context, local):
        """What does not change between sampling steps: cross-attention (k, v) of the context (B, S, d)
        and the local embedding (B, T, d) of [mask, latents * mask] (B, T, local_dim) or None."""
        return self.cross_attn.keys_values(context), None if local is None else self.to_local_embed(local)

    def forward(self, x, prepared, glob, freqs, keep):
        """x (B, M+T, d); prepared from `prepare`; glob (B, 6d); keep (B, M+T) bool or None."""
        kv, local = prepared
        ssa, shsa, gsa, sff, shff, gff = (self.to_scale_shift_gate + glob)[:, None, :].chunk(6, dim=-1)
        h = self.pre_norm(x) * (1 + ssa) + shsa
        x = x + self.self_attn(h, freqs, keep) * torch.sigmoid(1 - gsa)
        x = x + self.cross_attn(self.cross_attend_norm(x), kv)
        if local is not None:                             # (B, T, d), left-padded over the memory tokens
            x = x + F.pad(local, (0, 0, x.shape[1] - local.shape[1], 0))
        h = self.ff_norm(x) * (1 + sff) + shff
        return x + self.ff(h) * torch.sigmoid(1 - gff)


class Transformer(nn.Module):
    def __init__(self, cfg: DitConfig):
        super().__init__()
        d = cfg.embed_dim
        self.project_in = nn.Linear(cfg.io_channels, d, bias=False)
        self.project_out = nn.Linear(d, cfg.io_channels, bias=False)
        self.rotary_pos_emb = Rotary(cfg.rotary_dim)
        self.memory_tokens = nn.Parameter(torch.zeros(cfg.num_memory_tokens, d))
        self.global_cond_embedder = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, 6 * d))
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])

    def forward(self, x, prepared, glob, keep):
        """x (B, T, io) -> (B, T, io); prepared: one `Block.prepare` result per layer; keep (B, T) bool
        or None (valid latent frames)."""
        b, m = x.shape[0], self.memory_tokens.shape[0]
        x = torch.cat([self.memory_tokens.expand(b, -1, -1), self.project_in(x)], dim=1)
        freqs = self.rotary_pos_emb(x.shape[1])
        if keep is not None:
            keep = torch.cat([torch.ones(b, m, dtype=torch.bool, device=keep.device), keep.bool()], dim=1)
        glob = self.global_cond_embedder(glob)
        for layer, prep in zip(self.layers, prepared):
            x = layer(x, prep, glob, freqs, keep)
        return self.project_out(x[:, m:])


class DiT(nn.Module):
    """v = DiT(x, t, cross, glob, local, keep). See the module docstring for the layout."""

    def __init__(self, cfg: DitConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.to_timestep_embed = _mlp(cfg.timestep_features_dim, d, bias=True)
        self.to_cond_embed = _mlp(cfg.cond_token_dim, d, bias=False)
        self.to_global_embed = _mlp(cfg.global_cond_dim, d, bias=False)
        self.transformer = Transformer(cfg)
        self.preprocess_conv = nn.Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.project_in.weight.dtype

    def prepare(self, cross, local=None, cfg_scale: float = 1.0) -> list:
        """Per-layer tensors that stay fixed over a trajectory (cross-attention keys/values, local
        embeddings), for `forward(..., prepared=...)`: the same arithmetic, done once instead of per step.
        cross (B, S, cond_dim); local (B, io + 1, T) or None; cfg_scale as the later forward calls
        (guidance doubles the batch with zero cross tokens)."""
        if cfg_scale != 1.0:
            cross = torch.cat([cross, torch.zeros_like(cross)])
            local = None if local is None else torch.cat([local, local])
        dt = self.dtype
        context = self.to_cond_embed(cross.to(dt))
        if local is not None:
            local = local.to(dt).transpose(1, 2)
        return [layer.prepare(context, local) for layer in self.transformer.layers]

    def forward_once(self, x, t, cross, glob, local=None, keep=None, prepared=None):
        """One network evaluation (no guidance).

        x (B, io, T) latents; t (B,) noise level in [0, 1]; cross (B, S, cond_dim) tokens;
        glob (B, cond_dim); local (B, io + 1, T) = [mask, latents * mask] or None;
        keep (B, T) bool valid frames or None; prepared: `prepare(cross, local)` (then cross and
        local are not read). Returns v (B, io, T) in the DiT's dtype.
        """
        dt = self.dtype
        x, glob = x.to(dt), glob.to(dt)
        if prepared is None:
            prepared = self.prepare(cross, local)
        g = self.to_global_embed(glob)
        # Timestep features from t in fp32, cast afterwards. The official code rounds t to the model dtype
        # first (identical in fp32); in bf16 that moves t = 0.994 to 0.992, and features up to 1e4 Hz
        # then change completely (13% velocity error measured); training under autocast saw fp32 t.
        feats = expo_fourier_features(t.float(), self.cfg.timestep_features_dim).to(dt)
        g = g + self.to_timestep_embed(feats)
        x = self.preprocess_conv(x) + x
        out = self.transformer(x.transpose(1, 2), prepared, g, keep).transpose(1, 2)
        return self.postprocess_conv(out) + out

    def forward(self, x, t, cross, glob, local=None, keep=None, cfg_scale: float = 1.0, apg_scale: float = 1.0,
                prepared=None):
        """Velocity, with classifier-free guidance when cfg_scale != 1.

        Guidance as the official `DiffusionTransformer.forward`: one batch of [conditional,
        unconditional (all cross tokens zero)], combined on the denoised estimates
        x - t v; `apg_scale` 1 keeps only the part of the difference orthogonal to the
        conditional estimate (APG, the default), 0 is plain CFG. Shapes as forward_once;
        `prepared` must come from `prepare(cross, local, cfg_scale)` with the same cfg_scale.
        """
        if cfg_scale == 1.0:
            return self.forward_once(x, t, cross, glob, local, keep, prepared)
        if prepared is None:
            prepared = self.prepare(cross, local, cfg_scale)
        two = lambda a: None if a is None else torch.cat([a, a])  # noqa: E731
        both = self.forward_once(two(x), two(t), None, two(glob), None, two(keep), prepared)
        v_c, v_u = both.chunk(2)
        x = x.to(v_c.dtype)
        sigma = t.float().to(v_c.dtype)[:, None, None]
        den_c, den_u = x - v_c * sigma, x - v_u * sigma
        diff = den_c - den_u
        if apg_scale != 0.0:
            _, orth = apg_project(diff, den_c, keep)
            diff = orth if apg_scale == 1.0 else apg_scale * orth + (1 - apg_scale) * diff
        den = den_c + (cfg_scale - 1) * diff
        return (x - den) / sigma


def apg_project(v0: torch.Tensor, v1: torch.Tensor, keep: torch.Tensor | None = None):
    """Split v0 (B, C, T) into parts parallel and orthogonal to v1, in float64, over valid
    frames only when `keep` (B, T) is given (the orthogonal part is then zero on padding).
    Official: `DiffusionTransformer.apg_project`."""
    dtype = v0.dtype
    v0, v1 = v0.double(), v1.double()
    if keep is None:
        v1n = F.normalize(v1, dim=[-1, -2])
        par = (v0 * v1n).sum(dim=[-1, -2], keepdim=True) * v1n
        return par.to(dtype), (v0 - par).to(dtype)
    m = keep[:, None, :].double()
    v1m = v1 * m
    v1n = v1m / v1m.norm(dim=[-1, -2], keepdim=True).clamp(min=1e-8)
    par = ((v0 * m) * v1n).sum(dim=[-1, -2], keepdim=True) * v1n
    orth = (v0 - (v0 * v1n).sum(dim=[-1, -2], keepdim=True) * v1n) * m
    return par.to(dtype), orth.to(dtype)
