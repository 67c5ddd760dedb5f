"""SAME-S, the Stable Audio 3 autoencoder, written from scratch.

Follows the official `Stability-AI/stable-audio-3` `stable_audio_3/models/autoencoders.py`
(`SAMEEncoder`, `SAMEDecoder`, `TransformerResamplingBlock`), `models/bottleneck.py`
(`SoftNormBottleneck`) and `models/pretransforms.py` (`PatchedPretransform`); the same
code is in stable-audio-tools 0.0.20.

    audio (B, 2, S) --patch 256--> (B, 512, S/256) --encoder--> (B, 256, S/4096) --SoftNorm--> latents
    latents --SoftNorm decode--> --decoder--> (B, 512, L*16) --unpatch--> audio (B, 2, L*4096)

Encoder: WNConv1d mapping 512 -> 768, then every 16 patch tokens get one learned token
appended (17 per latent frame); 6 transformer blocks; the appended token becomes the
latent (Linear 768 -> 256). Decoder: Linear 256 -> 768, every latent token gets 16
learned tokens appended; 6 blocks; the 16 (one learned token repeated) become patch frames (WNConv1d 768 -> 512).
Attention runs in chunks of 34 tokens (2 latent frames): the first half of the blocks
on disjoint chunks, the second half on chunks shifted by 17 tokens, the sequence
edge-padded by repeating its first and last 17 tokens. Blocks: DyT norms, differential
attention (SDPA(q, k, v) - SDPA(q2, k2, v)) with DyT qk-norm and rotary on 32 of 64
features restarting in every chunk, SwiGLU feed-forward.

Decoding is stochastic in the official code even in eval: SoftNorm adds
randn * running_std * 1e-3 and the decoder adds randn * mask_noise to its new tokens.
Here both draws come from an explicit `torch.Generator` (in that order), or are
switched off with `noise=False`.

Weight norm: the checkpoint's `mapping.weight_g/weight_v` are fused into
`mapping.weight` at load (loading.py). Feed-forward names differ as in dit.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import AutoencoderConfig, SameConfig
from .dit import Rotary, apply_rotary
from .sampler import randn_from


class DyT(nn.Module):
    """Dynamic tanh norm: gamma * tanh(alpha * x) + beta (alpha one scalar)."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), 4.0))
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return self.gamma * torch.tanh(self.alpha * x) + self.beta


class DiffAttention(nn.Module):
    """Differential self-attention: fused projection to q, k, v, q2, k2 (in that order)."""

    def __init__(self, dim: int, head_dim: int):
        super().__init__()
        self.heads = dim // head_dim
        self.to_qkv = nn.Linear(dim, dim * 5, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.q_norm = DyT(head_dim)
        self.k_norm = DyT(head_dim)

    def forward(self, x, freqs):
        b, n, _ = x.shape
        q, k, v, q2, k2 = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(5, dim=-1))
        q, q2 = (apply_rotary(self.q_norm(t), freqs).to(v.dtype) for t in (q, q2))
        k, k2 = (apply_rotary(self.k_norm(t), freqs).to(v.dtype) for t in (k, k2))
        out = F.scaled_dot_product_attention(q, k, v) - F.scaled_dot_product_attention(q2, k2, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.proj_in = nn.Linear(dim, dim * mult * 2)
        self.proj_out = nn.Linear(dim * mult, dim)

    def forward(self, x):
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(value * F.silu(gate))


class SameBlock(nn.Module):
    """Pre-norm block: x += attn(dyt(x)); x += ff(dyt(x)). Rotary positions restart per chunk."""

    def __init__(self, dim: int, head_dim: int, ff_mult: int):
        super().__init__()
        self.pre_norm = DyT(dim)
        self.self_attn = DiffAttention(dim, head_dim)
        self.ff_norm = DyT(dim)
        self.ff = SwiGLU(dim, ff_mult)
        self.rope = Rotary(head_dim // 2)

    def forward(self, x):
        x = x + self.self_attn(self.pre_norm(x), self.rope(x.shape[1]))
        return x + self.ff(self.ff_norm(x))


def _pad_to_multiple(x: torch.Tensor, m: int, dim: int) -> torch.Tensor:
    extra = (-x.shape[dim]) % m
    if extra == 0:
        return x
    shape = list(x.shape)
    shape[dim] = extra
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


class Resampler(nn.Module):
    """One `TransformerResamplingBlock`: groups of tokens plus learned new tokens, chunked attention.

    Encoder: (B, io, L patch frames) -> (B, dim, L/stride). Decoder: (B, dim, N) -> (B, io, N*stride).
    """

    def __init__(self, cfg: SameConfig, kind: str):
        super().__init__()
        self.cfg, self.kind = cfg, kind
        k = 3 if cfg.conv_mapping else 1
        if kind == "encoder":
            self.mapping = nn.Conv1d(cfg.io_channels, cfg.dim, k, padding="same", bias=cfg.mapping_bias)
        else:
            self.mapping = nn.Conv1d(cfg.dim, cfg.io_channels, k, padding="same", bias=cfg.mapping_bias)
        # one learned token (variable stride), repeated: once per latent frame (encoder),
        # `stride` times per latent frame (decoder)
        self.new_tokens = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.transformers = nn.ModuleList([SameBlock(cfg.dim, cfg.dim_heads, cfg.ff_mult) for _ in range(cfg.depth)])

    def _chunked(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, d) with N a multiple of the chunk -> same shape."""
        b, n, d = x.shape
        c = self.cfg.chunk_tokens
        split = len(self.transformers) // 2 if self.cfg.chunk_midpoint_shift else len(self.transformers)
        x = x.reshape(b * (n // c), c, d)
        for layer in self.transformers[:split]:
            x = layer(x)
        x = x.reshape(b, n, d)
        if split == len(self.transformers):
            return x
        s = c // 2                                        # shift by half a chunk: whole latent groups
        x = torch.cat([x[:, :s], x, x[:, -s:]], dim=1)    # edge padding repeats the outer groups
        x = x.reshape(-1, c, d)
        for layer in self.transformers[split:]:
            x = layer(x)
        return x.reshape(b, n + 2 * s, d)[:, s:-s]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, noise: bool = True):
        cfg = self.cfg
        group = cfg.stride + 1
        if self.kind == "encoder":
            x = self.mapping(_pad_to_multiple(x, cfg.chunk_size, -1)).transpose(1, 2)   # (B, L, d)
            b, n = x.shape[0], x.shape[1] // cfg.stride
            tokens = x.reshape(b * n, cfg.stride, -1)
            new = self.new_tokens.expand(b * n, 1, -1)
        else:
            x = _pad_to_multiple(x.transpose(1, 2), cfg.chunk_size // cfg.stride, 1)      # (B, N, d)
            b, n = x.shape[0], x.shape[1]
            tokens = x.reshape(b * n, 1, -1)
            new = self.new_tokens.expand(b * n, cfg.stride, -1)
        if noise and cfg.mask_noise > 0:
            new = new + randn_from(generator, new) * cfg.mask_noise
        x = torch.cat([tokens, new], dim=1).reshape(b, n * group, -1)
        x = self._chunked(x).reshape(b * n, group, -1)
        if self.kind == "encoder":
            return x[:, -1].reshape(b, n, -1).transpose(1, 2)                             # (B, d, N)
        out = x[:, -cfg.stride:].reshape(b, n * cfg.stride, -1).transpose(1, 2)            # (B, d, N*stride)
        return self.mapping(out)


class SameEncoder(nn.Module):
    def __init__(self, cfg: SameConfig, latent_dim: int):
        super().__init__()
        self.resampler = Resampler(cfg, "encoder")
        self.to_latent = nn.Linear(cfg.dim, latent_dim)

    def forward(self, x):
        """Patched audio (B, io, L) -> pre-bottleneck latents (B, latent, ceil(L/chunk)*chunk/stride)."""
        return self.to_latent(self.resampler(x).transpose(1, 2)).transpose(1, 2)


class SameDecoder(nn.Module):
    def __init__(self, cfg: SameConfig, latent_dim: int):
        super().__init__()
        self.from_latent = nn.Linear(latent_dim, cfg.dim)
        self.resampler = Resampler(cfg, "decoder")

    def forward(self, z, generator=None, noise=True):
        """(B, latent, N) -> patched audio (B, io, N' * stride), N' = N rounded up to the chunk."""
        return self.resampler(self.from_latent(z.transpose(1, 2)).transpose(1, 2), generator, noise)


class SoftNorm(nn.Module):
    """The SoftNorm bottleneck: encode (x * scaling_factor + bias) / running_std; decode x * running_std."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.noise_regularize = cfg.noise_regularize
        self.scaling_factor = nn.Parameter(torch.ones(1, cfg.latent_dim, 1))
        self.bias = nn.Parameter(torch.zeros(1, cfg.latent_dim, 1))
        self.noise_scaling_factor = nn.Parameter(torch.ones(1, 0, 1))   # in the checkpoint, always empty here
        self.running_std = nn.Parameter(torch.ones(1), requires_grad=False) if cfg.auto_scale else None

    def encode(self, x):
        x = x * self.scaling_factor + self.bias
        return x / self.running_std if self.running_std is not None else x

    def decode(self, x, generator=None, noise=True):
        if self.running_std is not None:
            x = x * self.running_std
        if noise and self.noise_regularize:
            scale = self.running_std if self.running_std is not None else x.std(dim=-1, keepdim=True)
            x = x + randn_from(generator, x) * scale * 1e-3
        return x


class SameAutoencoder(nn.Module):
    """Audio <-> latents. encode (B, C, S) -> (B, latent, T); decode (B, latent, T) -> (B, C, T * ratio)."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SameEncoder(cfg.encoder, cfg.latent_dim)
        self.decoder = SameDecoder(cfg.decoder, cfg.latent_dim)
        self.bottleneck = SoftNorm(cfg)

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.to_latent.weight.dtype

    def patch(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, C, S) -> (B, C * h, ceil(S / h)), zero-padded; channel-major like `b c (l h) -> b (c h) l`."""
        h = self.cfg.patch_size
        audio = _pad_to_multiple(audio, h, -1)
        b, c, s = audio.shape
        return audio.reshape(b, c, s // h, h).permute(0, 1, 3, 2).reshape(b, c * h, s // h)

    def unpatch(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cfg.patch_size
        b, ch, n = x.shape
        return x.reshape(b, ch // h, h, n).permute(0, 1, 3, 2).reshape(b, ch // h, n * h)

    def _encode(self, audio):
        return self.bottleneck.encode(self.encoder(self.patch(audio))) / self.cfg.scale

    def _decode(self, z, generator, noise):
        z = self.bottleneck.decode(z * self.cfg.scale, generator, noise)
        return self.unpatch(self.decoder(z, generator, noise))

    def encode(self, audio: torch.Tensor, chunk: int = 128, overlap: int = 32) -> torch.Tensor:
        """Audio (B, C, S samples) at the model rate -> latents (B, latent, T), T = S / ratio rounded up
        to the encoder chunk (2 frames). When the config says `chunked`, long inputs are encoded in
        windows of `chunk` latent frames overlapping by `overlap` (official `encode_audio`)."""
        audio = audio.to(self.dtype)
        ratio = self.cfg.downsampling_ratio
        if not self.cfg.chunked or audio.shape[-1] < chunk * ratio:
            return self._encode(audio)
        starts = _chunk_starts(audio.shape[-1], chunk * ratio, (chunk - overlap) * ratio)
        parts = [self._encode(audio[..., s:s + chunk * ratio]) for s in starts]
        return _stitch(parts, [s // ratio for s in starts], audio.shape[-1] // ratio, chunk, overlap // 2)

    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None, noise: bool = True,
               chunk: int = 128, overlap: int = 32) -> torch.Tensor:
        """Latents (B, latent, T) -> audio (B, C, T' * ratio), T' = T rounded up to the decoder chunk.

        noise: draw the official decode noise (SoftNorm, then decoder new tokens) from `generator`
        (None = torch's global RNG); False switches both off. Chunked as `encode` when configured.
        """
        z = z.to(self.dtype)
        ratio = self.cfg.downsampling_ratio
        if not self.cfg.chunked or z.shape[-1] < chunk:
            return self._decode(z, generator, noise)
        starts = _chunk_starts(z.shape[-1], chunk, chunk - overlap)
        parts = [self._decode(z[..., s:s + chunk], generator, noise) for s in starts]
        return _stitch(parts, [s * ratio for s in starts], z.shape[-1] * ratio, chunk * ratio,
                       (overlap // 2) * ratio)


def _chunk_starts(total: int, size: int, hop: int) -> list[int]:
    starts = list(range(0, total - size + 1, hop))
    if starts[-1] != total - size:
        starts.append(total - size)                       # the last window ends at the signal end
    return starts


def _stitch(parts, starts, total, size, half_overlap):
    """Overlap-trim windows back together: inner edges lose half the overlap (official encode/decode_audio)."""
    out = parts[0].new_zeros(*parts[0].shape[:-1], total)
    for i, (s, part) in enumerate(zip(starts, parts)):
        last = i == len(parts) - 1
        o = total - size if last else s
        left = 0 if i == 0 else half_overlap
        right = size if last else size - half_overlap
        out[..., o + left:o + right] = part[..., left:right]
    return out
