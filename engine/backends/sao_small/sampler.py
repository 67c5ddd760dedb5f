"""Ping-pong sampling for the rf_denoiser objective (k-diffusion style pure functions).

The schedule is SAT 0.0.19's: logSNR spaced linearly from -6 (sigma_max = 1) to
2, t = sigmoid(-logSNR), t[0] = sigma_max, t[-1] = 0. A step denoises fully
(x0 = x - t v) and re-noises to the next t with fresh noise.

Latent blending (for inpaint/continue, which the model lacks natively): after
each step the frames where `keep` is 1 are overwritten with the clean latent
noised to the next t, with the same noise convention as the sampler.
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def rf_schedule(steps: int, sigma_max: float = 1.0) -> torch.Tensor:
    sigma_max = min(sigma_max, 1.0)
    logsnr_max = math.log((1 - sigma_max) / sigma_max + 1e-6) if sigma_max < 1 else -6.0
    t = torch.sigmoid(-torch.linspace(logsnr_max, 2, steps + 1))
    t[0], t[-1] = sigma_max, 0.0
    return t


def sample_pingpong(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                    sigmas: torch.Tensor, noise: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    known: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                    callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """x starts as noise at sigmas[0]. model(x, t_batch) -> velocity.

    noise(like) draws the re-noising noise (default torch.randn_like, i.e. the
    global RNG as SAT does). known/keep: clean latents (B, C, T) and a mask
    (B or 1, 1, T) of frames to hold to them.
    """
    noise = noise or torch.randn_like
    ones = x.new_ones([x.shape[0]])
    n = len(sigmas) - 1
    for i in range(n):
        t, t_next = sigmas[i], sigmas[i + 1]
        denoised = x - t * model(x, t * ones)
        if known is not None:
            denoised = torch.lerp(denoised, known.to(denoised.dtype), keep)
        x = (1 - t_next) * denoised + t_next * noise(x)
        if callback is not None:
            callback(i + 1, n)
    return x
