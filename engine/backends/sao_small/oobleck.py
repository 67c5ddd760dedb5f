"""The Oobleck VAE of Stable Audio Open Small, written from scratch.

44.1 kHz stereo <-> 64-channel latents at 1/2048 of the rate (~21.5 frames/s).
Convolutions are nn.Conv1d / nn.ConvTranspose1d (the checkpoint's weight-normed
(weight_g, weight_v) pairs are fused into `weight` at load time, so inference
pays nothing for weight norm), computed as 2-D convolutions over a
channels-last (B, C, 1, T) tensor: the same arithmetic in the layout oneDNN
runs fastest (bf16 on 2 AVX512-BF16 cores: 1.1-1.4x per convolution, measured on
the encoder's shapes), and a layout tensor cores like on a GPU. Layer indices mirror the checkpoint
(`pretransform.model.{encoder,decoder}.layers.N...`).

Both directions are fully convolutional, so a slice of audio or latents can be
processed alone: `encoder_margin()` / `decoder_margin()` give the receptive
field (in latent frames) that a slice needs on each side to match a whole-file
pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import OobleckConfig, VaeConfig


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, 1, T) channels-last: the layout every layer here runs in."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, T) -> (B, C, T), contiguous."""
    return x.squeeze(2).contiguous()


class Conv1d(nn.Conv1d):
    """nn.Conv1d (same parameters and keys) applied to (B, C, 1, T) channels-last rows."""

    def forward(self, x):
        return F.conv2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                        (1, self.dilation[0]))


class ConvTranspose1d(nn.ConvTranspose1d):
    """nn.ConvTranspose1d (same parameters and keys) applied to (B, C, 1, T) channels-last rows."""

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]),
                                  (0, self.padding[0]), (0, self.output_padding[0]), 1, (1, self.dilation[0]))


class Snake(nn.Module):
    """SnakeBeta with log-scale parameters: x + sin^2(e^alpha x) / (e^beta + 1e-9), per channel (dim 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        a = self.alpha.exp().view(shape)
        inv_b = 1.0 / (self.beta.exp().view(shape) + 1e-9)
        # the same operations in the same order as x + inv_b * sin(a x)^2 (bit-identical), in place
        # on one new tensor: the activations are tens of MB at the audio rate, and every fresh
        # tensor is a pass over new memory (~15% of an encode on the CPU)
        y = torch.mul(a, x)
        return y.sin_().square_().mul_(inv_b).add_(x)


def _act(cfg: OobleckConfig, channels: int) -> nn.Module:
    return Snake(channels) if cfg.use_snake else nn.ELU()


class ResidualUnit(nn.Module):
    def __init__(self, cfg: OobleckConfig, channels: int, dilation: int):
        super().__init__()
        self.layers = nn.Sequential(
            _act(cfg, channels), Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            _act(cfg, channels), Conv1d(channels, channels, 1))

    def forward(self, x):
        return self.layers(x).add_(x)      # = x + layers(x), without another activation-sized tensor


def _encoder_block(cfg, c_in, c_out, stride):
    return nn.Sequential(*[ResidualUnit(cfg, c_in, d) for d in (1, 3, 9)], _act(cfg, c_in),
                         Conv1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2)))


def _decoder_block(cfg, c_in, c_out, stride):
    return nn.Sequential(_act(cfg, c_in),
                         ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
                         *[ResidualUnit(cfg, c_out, d) for d in (1, 3, 9)])


class _Blocks(nn.Module):
    """Wraps a Sequential of blocks so keys read `...blocks.N.layers.M` like the checkpoint."""

    def __init__(self, seq: nn.Sequential):
        super().__init__()
        self.layers = seq

    def forward(self, x):
        return self.layers(x)


class Encoder(nn.Module):
    def __init__(self, cfg: OobleckConfig):
        super().__init__()
        ch = [cfg.channels * m for m in (1, *cfg.c_mults)]
        layers = [Conv1d(cfg.audio_channels, ch[0], 7, padding=3)]
        layers += [_Blocks(_encoder_block(cfg, ch[i], ch[i + 1], s)) for i, s in enumerate(cfg.strides)]
        layers += [_act(cfg, ch[-1]), Conv1d(ch[-1], cfg.latent_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        """(B, audio_channels, S) -> (B, latent_dim, S / 2048): the encoder side's latent_dim (mean and scale)."""
        return from_rows(self.layers(to_rows(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: OobleckConfig):
        super().__init__()
        ch = [cfg.channels * m for m in (1, *cfg.c_mults)]
        layers = [Conv1d(cfg.latent_dim, ch[-1], 7, padding=3)]
        for i in range(len(cfg.strides), 0, -1):
            layers.append(_Blocks(_decoder_block(cfg, ch[i], ch[i - 1], cfg.strides[i - 1])))
        layers += [_act(cfg, ch[0]), Conv1d(ch[0], cfg.audio_channels, 7, padding=3, bias=False)]
        if cfg.final_tanh:
            layers.append(nn.Tanh())
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        """(B, latent_dim, T) -> (B, 2, T * 2048)."""
        return from_rows(self.layers(to_rows(x)))


class OobleckVAE(nn.Module):
    def __init__(self, cfg: VaeConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder)
        self.decoder = Decoder(cfg.decoder)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.layers[0].weight.dtype

    def encode_mean_scale(self, audio):
        """audio (B, 2, n*2048) -> (mean, scale) latents (B, 64, n), before the VAE sampling."""
        h = self.encoder(audio.to(self.dtype)).float()
        mean, scale = h.chunk(2, dim=1)
        return mean, scale

    def encode(self, audio, generator: torch.Generator | None = None, sample: bool = False):
        """Latents for the diffusion model. sample=False returns the posterior mean (deterministic);
        sample=True draws mean + std * noise as SAT does (std = softplus(scale) + 1e-4)."""
        mean, scale = self.encode_mean_scale(audio)
        if sample:
            std = torch.nn.functional.softplus(scale) + 1e-4
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            mean = mean + std * noise
        return mean / self.cfg.scale

    def decode(self, latents):
        """latents (B, 64, n) -> audio (B, 2, n*2048) in float32."""
        return self.decoder((latents * self.cfg.scale).to(self.dtype)).float()


def pack_conv_weights(module: nn.Module) -> None:
    """Store every convolution weight in `module` the way its layer reads it: (out, in, 1, k) rows in
    channels-last order (memory k-major), same values, shapes and state-dict keys. F.conv2d otherwise
    copies each weight into that layout at every call: on 2 CPU cores in bf16 the 2048-channel layers
    at the latent rate took 46-49 ms instead of 73-74 ms (a 67 MB copy each), outputs bit-identical."""
    for m in module.modules():
        if isinstance(m, (Conv1d, ConvTranspose1d)):
            m.weight.data = m.weight.data.unsqueeze(2).contiguous(memory_format=torch.channels_last).squeeze(2)


def _radius(convs: list[tuple[int, int, int]]) -> float:
    """Receptive-field radius, in input samples, of a chain of (kernel, dilation, rate) convs."""
    return sum((k - 1) * d / 2 * r for k, d, r in convs)


def encoder_margin(cfg: VaeConfig) -> int:
    """Latent frames of audio needed on each side of a slice so its latents match a whole-file encode."""
    e = cfg.encoder
    convs, rate = [(7, 1, 1)], 1
    for s in e.strides:
        convs += [(7, d, rate) for d in (1, 3, 9)] + [(2 * s, 1, rate)]
        rate *= s
    convs.append((3, 1, rate))
    # no extra frame: on the full-size model 8 frames (radius 7.77) match a whole-file encode to float
    # rounding (5.8e-6 relative, as 9 does) and 7 do not (5e-4); tests/test_sao_backend.py checks both
    return math.ceil(_radius(convs) / cfg.downsampling_ratio)


def decoder_margin(cfg: VaeConfig) -> int:
    """Latent frames needed on each side of a slice so its decoded audio matches a whole decode."""
    d = cfg.decoder
    ratio = cfg.downsampling_ratio
    convs = [(7, 1, ratio)]                     # radius in output samples: rate = samples per input step
    rate = ratio
    for s in reversed(d.strides):
        convs.append((2 * s / s, 1, rate))      # transposed conv: ~1 input step each side
        rate //= s
        convs += [(7, dl, rate) for dl in (1, 3, 9)]
    convs.append((7, 1, 1))
    return math.ceil(_radius(convs) / ratio)      # full size: 10 frames exact (3.8e-5, as 11), 9 not (9e-3)
