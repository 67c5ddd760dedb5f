"""The diffusion transformer (DiT) of Stable Audio Open Small, written from scratch.

Shapes (published model): latents x (B, 64, T) with T <= 256, one prepended
global token, 16 pre-norm blocks of self-attention (rotary on the first half of
each head), cross-attention to 65 conditioning tokens, and a GLU feed-forward.
The network predicts a velocity v; the rf_denoiser sampler uses x - t * v.

Module and parameter names follow the official checkpoint under
`model.model.*`, so loading is a plain strict state-dict load
(`ff.proj_in/proj_out` are the one renamed pair, see loading.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DitConfig


class LayerNorm(nn.Module):
    """LayerNorm with a learned gain and a fixed zero bias (a buffer in the checkpoint)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta, self.eps)


class FourierFeatures(nn.Module):
    """Timestep features: learned frequencies W (out/2, in); [cos 2 pi t W, sin 2 pi t W]."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features))

    def forward(self, t):
        f = 2 * math.pi * t @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


class Rotary(nn.Module):
    """Rotary position angles for the first `dim` features of each head (base 10000)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(n, device=device, dtype=torch.float32)
        f = torch.outer(pos, self.inv_freq.float().to(device))
        f = torch.cat([f, f], dim=-1)                      # (n, dim): halves share angles
        return f.cos(), f.sin()


def apply_rotary(x, cos, sin):
    """Rotate the first cos.shape[-1] features of x (B, H, N, D) in fp32; the rest pass through."""
    d = cos.shape[-1]
    xr, rest = x[..., :d].float(), x[..., d:]
    x1, x2 = xr.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    out = xr * cos + rotated * sin
    return torch.cat([out.to(x.dtype), rest], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, head_dim: int, context_dim: int | None, qk_norm: str):
        super().__init__()
        self.heads = dim // head_dim
        if context_dim is None:
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        else:
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(context_dim, context_dim * 2, bias=False)
            # kv heads follow the context width (equal to dim here, as in the model)
            self.kv_heads = context_dim // head_dim
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.qk_norm = qk_norm
        if qk_norm == "ln":
            self.q_norm = nn.LayerNorm(head_dim, eps=1e-6)
            self.k_norm = nn.LayerNorm(head_dim, eps=1e-6)

    def _split(self, t, h):
        b, n, _ = t.shape
        return t.view(b, n, h, -1).transpose(1, 2)

    def keys_values(self, context):
        """Cross-attention (k, v), each (B, heads, S, head_dim), k normed: fixed over a trajectory."""
        k, v = (self._split(t, self.kv_heads) for t in self.to_kv(context).chunk(2, dim=-1))
        if self.kv_heads != self.heads:
            k, v = (t.repeat_interleave(self.heads // self.kv_heads, dim=1) for t in (k, v))
        return (self.k_norm(k) if self.qk_norm == "ln" else k), v

    def forward(self, x, context=None, rotary=None, kv=None):
        """Self-attention (context and kv None), or cross-attention to `context` (B, S, context_dim) or
        to its precomputed `kv` (keys_values)."""
        if context is None and kv is None:
            q, k, v = (self._split(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
            if self.qk_norm == "ln":
                q, k = self.q_norm(q), self.k_norm(k)
        else:
            q = self._split(self.to_q(x), self.heads)
            k, v = kv if kv is not None else self.keys_values(context)
            if self.qk_norm == "ln":
                q = self.q_norm(q)
        if rotary is not None:
            cos, sin = rotary
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class FeedForward(nn.Module):
    """GLU: value * SiLU(gate) from one projection, then back to dim."""

    def __init__(self, dim: int, mult: int):
        super().__init__()
        inner = dim * mult
        self.proj_in = nn.Linear(dim, inner * 2)
        self.proj_out = nn.Linear(inner, dim)

    def forward(self, x):
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(value * F.silu(gate))


class Block(nn.Module):
    def __init__(self, cfg: DitConfig, context_dim: int):
        super().__init__()
        d, hd = cfg.embed_dim, cfg.head_dim
        self.pre_norm = LayerNorm(d)
        self.self_attn = Attention(d, hd, None, cfg.qk_norm)
        self.cross_attend_norm = LayerNorm(d)
        self.cross_attn = Attention(d, hd, context_dim, cfg.qk_norm)
        self.ff_norm = LayerNorm(d)
        self.ff = FeedForward(d, cfg.ff_mult)

    def forward(self, x, context, rotary, kv=None):
        x = x + self.self_attn(self.pre_norm(x), rotary=rotary)
        x = x + self.cross_attn(self.cross_attend_norm(x), context=context, kv=kv)
        return x + self.ff(self.ff_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: DitConfig, context_dim: int):
        super().__init__()
        d = cfg.embed_dim
        self.project_in = nn.Linear(cfg.io_channels, d, bias=False)
        self.project_out = nn.Linear(d, cfg.io_channels, bias=False)
        self.rotary_pos_emb = Rotary(max(cfg.head_dim // 2, 32))
        self.layers = nn.ModuleList([Block(cfg, context_dim) for _ in range(cfg.depth)])

    def forward(self, x, prepend, context, kvs=None):
        """kvs: one cross-attention (k, v) per layer (DiT.prepare), else computed from `context`."""
        x = torch.cat([prepend, self.project_in(x)], dim=1)
        rotary = self.rotary_pos_emb(x.shape[1], x.device)
        for i, layer in enumerate(self.layers):
            x = layer(x, context, rotary, None if kvs is None else kvs[i])
        return self.project_out(x)


def _mlp(d_in: int, d_out: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=bias), nn.SiLU(), nn.Linear(d_out, d_out, bias=bias))


class DiT(nn.Module):
    def __init__(self, cfg: DitConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.timestep_features = FourierFeatures(1, 256)
        self.to_timestep_embed = _mlp(256, d, bias=True)
        cond_d = d if cfg.project_cond_tokens else cfg.cond_token_dim
        self.to_cond_embed = _mlp(cfg.cond_token_dim, cond_d, bias=False)
        glob_d = d if cfg.project_global_cond else cfg.global_cond_dim
        self.to_global_embed = _mlp(cfg.global_cond_dim, glob_d, bias=False)
        self.transformer = Transformer(cfg, cond_d)
        self.preprocess_conv = nn.Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.project_dtype()

    def project_dtype(self) -> torch.dtype:
        return self.transformer.project_in.weight.dtype

    def prepare(self, cross, cfg_scale: float = 1.0) -> list:
        """Per-layer cross-attention (k, v) of `cross` (B, S, cond), fixed over a trajectory, for
        `forward(..., prepared=...)`: the same arithmetic once instead of at every step (on 2 CPU
        cores ~4 GFLOP, 15-20 ms, per step). cfg_scale as the later forward calls (guidance doubles
        the batch with zero cross tokens)."""
        if cfg_scale != 1.0:
            cross = torch.cat([cross, torch.zeros_like(cross)])
        context = self.to_cond_embed(cross.to(self.project_dtype()))
        return [layer.cross_attn.keys_values(context) for layer in self.transformer.layers]

    def forward_once(self, x, t, cross, glob, prepared=None):
        """One network evaluation. x (B, C, T), t (B,), cross (B, S, cond), glob (B, cond) -> v (B, C, T).
        prepared: `prepare(cross)`, which `cross` then need not repeat (None allowed)."""
        dt = self.project_dtype()
        x, t, glob = x.to(dt), t.to(dt), glob.to(dt)
        context = None if prepared is not None else self.to_cond_embed(cross.to(dt))
        token = self.to_global_embed(glob) + self.to_timestep_embed(self.timestep_features(t[:, None]))
        x = self.preprocess_conv(x) + x
        out = self.transformer(x.transpose(1, 2), token[:, None, :], context, prepared)
        out = out[:, 1:, :].transpose(1, 2)           # drop the prepended token
        return self.postprocess_conv(out) + out

    def forward(self, x, t, cross, glob, cfg_scale: float = 1.0, prepared=None):
        """Velocity with classifier-free guidance when cfg_scale != 1 (unconditional = zero cross tokens).
        prepared: `prepare(cross, cfg_scale)`, computed once per trajectory."""
        if cfg_scale == 1.0:
            return self.forward_once(x, t, cross, glob, prepared)
        both = self.forward_once(torch.cat([x, x]), torch.cat([t, t]),
                                 None if prepared is not None else torch.cat([cross, torch.zeros_like(cross)]),
                                 torch.cat([glob, glob]), prepared)
        cond, uncond = both.chunk(2)
        return uncond + (cond - uncond) * cfg_scale
