"""The Stable Audio 3 sampler: LogSNRShift schedule and ping-pong steps (k-diffusion style pure functions).

Follows the official `Stability-AI/stable-audio-3` `stable_audio_3/inference/sampling.py`
(`LogSNRShift`, `build_schedule`, `sample_flow_pingpong`), the same as stable-audio-tools 0.0.20.

Schedule: t = linspace(sigma_max, 0, steps + 1), mapped through log-SNR space,
logsnr = end - t (end - start), t' = sigmoid(-logsnr), with start = anchor - rate log2(n / anchor_length)
(n: the effective latent length; the default rate 0 makes it independent of n), endpoints
kept exactly (t <= 0 -> 0, t >= 1 -> 1) and t'[0] = sigma_max. Eight steps with the default
(anchor -6.2, end 2.0): [1, .99438, .98448, .95791, .89090, .74555, .51250, .27389, 0].

Ping-pong: denoised = x - t_i v(x, t_i); x = (1 - t_{i+1}) denoised + t_{i+1} noise, on every
step including the last (where t_{i+1} = 0, but the noise is still drawn: the RNG order matters
for parity with the official code).
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def logsnr_schedule(steps: int, sigma_max: float = 1.0, anchor_logsnr: float = -6.2, logsnr_end: float = 2.0,
                    rate: float = 0.0, seq_len: float | None = None, anchor_length: float = 2000.0) -> torch.Tensor:
    """Noise levels (steps + 1,) float32 from sigma_max down to 0. seq_len: effective latent frames
    (only used when rate != 0)."""
    t = torch.linspace(sigma_max, 0, steps + 1)
    start = anchor_logsnr
    if rate != 0.0:
        start = anchor_logsnr - rate * math.log2(max(int(seq_len or 1), 1) / anchor_length)
    out = torch.sigmoid(-(logsnr_end - t * (logsnr_end - start)))
    out = torch.where(t <= 0, torch.zeros_like(out), out)
    out = torch.where(t >= 1, torch.ones_like(out), out)
    out[0] = sigma_max
    return out


def pingpong_step(x: torch.Tensor, v: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
    """One ping-pong update: full denoise with velocity v at t, re-noise to t_next with `noise`."""
    denoised = x - t * v
    return (1 - t_next) * denoised + t_next * noise


def sample_pingpong(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                    sigmas: torch.Tensor, generator: torch.Generator | None = None,
                    callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run the ping-pong sampler from x (noise at sigmas[0]) to sigmas[-1] = 0.

    model(x, t (B,)) -> velocity like x. generator: draws the re-noising noise (None = torch's
    global RNG, as the official code). callback(step, steps) after every step (1-based); it may
    raise (e.g. Cancelled) to stop at the next step.
    """
    n = len(sigmas) - 1
    ones = x.new_ones([x.shape[0]])
    for i in range(n):
        t, t_next = sigmas[i].to(x.dtype), sigmas[i + 1].to(x.dtype)
        v = model(x, t * ones)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = pingpong_step(x, v.to(x.dtype), t, t_next, noise)
        if callback is not None:
            callback(i + 1, n)
    return x
