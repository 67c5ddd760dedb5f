"""The Oobleck VAE of Stable Audio Open Small, written from scratch.

44.1 kHz stereo <-> 64-channel latents at 1/2048 of the rate (~21.5 frames/s).
Convolutions are plain nn.Conv1d / nn.ConvTranspose1d: the checkpoint's
weight-normed (weight_g, weight_v) pairs are fused into `weight` at load time,
so inference pays nothing for weight norm. Layer indices mirror the checkpoint
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

from .config import OobleckConfig, VaeConfig


class Snake(nn.Module):
    """SnakeBeta with log-scale parameters: x + sin^2(e^alpha x) / (e^beta + 1e-9)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        a = self.alpha.exp()[None, :, None]
        inv_b = 1.0 / (self.beta.exp()[None, :, None] + 1e-9)
        return x + inv_b * torch.sin(a * x).pow(2)


def _act(cfg: OobleckConfig, channels: int) -> nn.Module:
    return Snake(channels) if cfg.use_snake else nn.ELU()


class ResidualUnit(nn.Module):
    def __init__(self, cfg: OobleckConfig, channels: int, dilation: int):
        super().__init__()
        self.layers = nn.Sequential(
            _act(cfg, channels), nn.Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            _act(cfg, channels), nn.Conv1d(channels, channels, 1))

    def forward(self, x):
        return x + self.layers(x)


def _encoder_block(cfg, c_in, c_out, stride):
    return nn.Sequential(*[ResidualUnit(cfg, c_in, d) for d in (1, 3, 9)], _act(cfg, c_in),
                         nn.Conv1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2)))


def _decoder_block(cfg, c_in, c_out, stride):
    return nn.Sequential(_act(cfg, c_in),
                         nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
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
        layers = [nn.Conv1d(cfg.audio_channels, ch[0], 7, padding=3)]
        layers += [_Blocks(_encoder_block(cfg, ch[i], ch[i + 1], s)) for i, s in enumerate(cfg.strides)]
        layers += [_act(cfg, ch[-1]), nn.Conv1d(ch[-1], cfg.latent_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class Decoder(nn.Module):
    def __init__(self, cfg: OobleckConfig):
        super().__init__()
        ch = [cfg.channels * m for m in (1, *cfg.c_mults)]
        layers = [nn.Conv1d(cfg.latent_dim, ch[-1], 7, padding=3)]
        for i in range(len(cfg.strides), 0, -1):
            layers.append(_Blocks(_decoder_block(cfg, ch[i], ch[i - 1], cfg.strides[i - 1])))
        layers += [_act(cfg, ch[0]), nn.Conv1d(ch[0], cfg.audio_channels, 7, padding=3, bias=False)]
        if cfg.final_tanh:
            layers.append(nn.Tanh())
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


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
    return math.ceil(_radius(convs) / cfg.downsampling_ratio) + 1


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
    return math.ceil(_radius(convs) / ratio) + 1
