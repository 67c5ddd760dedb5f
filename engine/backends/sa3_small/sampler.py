"""The Stable Audio 3 sampler: LogSNRShift schedule and ping-pong steps (k-diffusion style pure functions).

Follows the official `Stability-AI/stable-audio-3` `stable_audio_3/inference/sampling.py`
(`LogSNRShift`, `build_schedule`, `sample_flow_pingpong`), the same as stable-audio-tools 0.0.20.

Schedule (`inference/distribution_shift.py` for the shifts): t = linspace(sigma_max, 0, steps + 1)
warped by the config's sampling shift, t'[0] = sigma_max. The default (no
`sampling_distribution_shift_options`) is LogSNRShift with rate 0: logsnr = end - t (end - start),
t' = sigmoid(-logsnr), start = anchor - rate log2(n / anchor_length), endpoints kept exactly.
Eight steps with anchor -6.2, end 2.0: [1, .99438, .98448, .95791, .89090, .74555, .51250, .27389, 0].
The "full" (DistributionShift, used by the official TensorRT script), "flux" and "none" shifts are
there too, in case a published config selects one; n is then the effective latent length.

Ping-pong: denoised = x - t_i v(x, t_i); x = (1 - t_{i+1}) denoised + t_{i+1} noise, on every
step including the last (where t_{i+1} = 0, but the noise is still drawn: the RNG order matters
for parity with the official code).
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def logsnr_shift(t: torch.Tensor, seq_len: int, anchor_length: float = 2000.0, anchor_logsnr: float = -6.2,
                 rate: float = 1.0, logsnr_end: float = 2.0) -> torch.Tensor:
    """LogSNRShift: logsnr = end - t (end - start), t' = sigmoid(-logsnr), exact endpoints kept;
    start = anchor - rate log2(seq_len / anchor_length)."""
    start = anchor_logsnr - rate * math.log2(seq_len / anchor_length)
    out = torch.sigmoid(-(logsnr_end - t * (logsnr_end - start)))
    out = torch.where(t <= 0, torch.zeros_like(out), out)
    return torch.where(t >= 1, torch.ones_like(out), out)


def full_shift(t: torch.Tensor, seq_len: int, base_shift: float = 0.5, max_shift: float = 1.15,
               max_length: int = 4096, min_length: int = 256, use_sine: bool = False) -> torch.Tensor:
    """DistributionShift ("full"): t' = 1 - e^mu / (e^mu + 1/(1 - t) - 1), mu interpolated in seq_len."""
    n = min(max(seq_len, min_length), max_length)
    mu = -(base_shift + (max_shift - base_shift) * (n - min_length) / (max_length - min_length))
    out = 1 - math.exp(mu) / (math.exp(mu) + (1 / (1 - t) - 1))
    return torch.sin(out * math.pi / 2) if use_sine else out


def flux_shift(t: torch.Tensor, seq_len: int, min_length: int = 256, max_length: int = 4096,
               alpha_min: float = 1.0, alpha_max: float = 1.0) -> torch.Tensor:
    """FluxDistributionShift: t' = a t / (1 + (a - 1) t), a log-linear in seq_len between the bounds."""
    lo, hi = math.log(min_length), math.log(max_length)
    hi = hi + 1e-8 if hi == lo else hi
    n = max(min(seq_len, max_length), min_length)
    frac = (math.log(n) - lo) / (hi - lo)
    la, lb = math.log(max(alpha_min, 1e-8)), math.log(max(alpha_max, 1e-8))
    a = math.exp(la + frac * (lb - la))
    return a * t / (1 + (a - 1.0) * t)


SHIFTS = {"logsnr": logsnr_shift, "full": full_shift, "flux": flux_shift, "none": lambda t, seq_len: t}


def build_schedule(steps: int, sigma_max: float = 1.0, shift: str = "logsnr", seq_len: int = 1,
                   **shift_args) -> torch.Tensor:
    """Noise levels (steps + 1,) float32 from sigma_max down to 0: linspace warped by the named shift
    (official `build_schedule`), first value forced back to sigma_max. seq_len: the latent length
    the shift sees (clamped to >= 1)."""
    t = torch.linspace(sigma_max, 0, steps + 1)
    t = SHIFTS[shift](t, max(int(seq_len), 1), **shift_args)
    t[0] = sigma_max
    return t


def logsnr_schedule(steps: int, sigma_max: float = 1.0, anchor_logsnr: float = -6.2, logsnr_end: float = 2.0,
                    rate: float = 0.0, seq_len: int = 2000, anchor_length: float = 2000.0) -> torch.Tensor:
    """The SA3 default schedule (LogSNRShift, rate 0: independent of the length)."""
    return build_schedule(steps, sigma_max, "logsnr", seq_len, anchor_length=anchor_length,
                          anchor_logsnr=anchor_logsnr, rate=rate, logsnr_end=logsnr_end)


def randn_from(generator: torch.Generator | None, like: torch.Tensor, shape=None) -> torch.Tensor:
    """Standard normal noise shaped like `like` (or `shape`), drawn in fp32 on the generator's device
    (global RNG when None), then moved to like's device and dtype: a CPU generator can drive a GPU model,
    and one seed gives the same noise at every precision (the official draws in the model dtype, which
    is the same thing in fp32; a bf16 draw would be another sequence altogether)."""
    dev = generator.device if generator is not None else like.device
    out = torch.randn(tuple(shape if shape is not None else like.shape), generator=generator, device=dev)
    return out.to(like.device, like.dtype)


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
        noise = randn_from(generator, x)
        x = pingpong_step(x, v.to(x.dtype), t, t_next, noise)
        if callback is not None:
            callback(i + 1, n)
    return x
