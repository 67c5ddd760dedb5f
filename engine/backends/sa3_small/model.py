"""SA3Model: the parts of Stable Audio 3 small and the operations a backend needs.

Shapes (published model): audio (B, 2, S) at 44100 Hz; latents (B, 256, T) with
T = S / 4096 latent frames (~10.77 per second); conditioning tokens (B, 257, 768)
= [256 T5Gemma tokens, 1 seconds token]; global conditioning (B, 768).

The whole official inpaint/continue/generate trajectory (stable-audio-tools 0.0.20
`generate_diffusion_cond_inpaint`, official `Stability-AI/stable-audio-3` `generate()`):

    samples = canvas_samples(seconds_total); T = latent_count(samples)     # canvas.py
    latents = model.encode(fit_to_canvas(source (2, S), samples)[None])    # (1, 256, T)
    mask = latent_mask(regions, T, end_sample=seconds_to_samples(seconds_total))[None]  # 1 keep, 0 generate
    keep = padding_mask(seconds_total, T)                                  # (1, T) valid frames
    cond = model.condition(prompts, [seconds_total] * B)
    out = model.inpaint(cond, mask, latents * mask, keep, generator=g)     # noise drawn first from g
    audio = model.decode_canvas(out, keep, generator=g).clamp(-1, 1)[..., :seconds_to_samples(seconds_total)]

For plain generation pass mask = masked latents = None and frames=T. `inpaint` computes the
per-trajectory fixed DiT work once (`prepare`); a caller driving its own loop can do the same
with `model.prepare(...)` / `velocity(..., prepared=...)` or `model.dit.prepare(...)`.

RNG order after seeding one generator: initial noise, one draw per step, SoftNorm decode
noise, decoder new-token noise (the official order after `torch.manual_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .conditioner import PromptConditioner, SecondsConditioner
from .config import Sa3Config
from .dit import DiT
from .same import SameAutoencoder
from .sampler import build_schedule, sample_pingpong


@dataclass
class Conditioning:
    """cross (B, S, 768) cross-attention tokens; glob (B, 768) global vector; seconds (B,) seconds_total."""
    cross: torch.Tensor
    glob: torch.Tensor
    seconds: list[float]

    def repeat(self, n: int) -> "Conditioning":
        """The same conditioning for n variations (batch x n)."""
        return Conditioning(self.cross.repeat_interleave(n, 0), self.glob.repeat_interleave(n, 0),
                            [s for s in self.seconds for _ in range(n)])


class SA3Model(nn.Module):
    """DiT + SAME-S + conditioners. Build with `load_sa3` (loading.py) to get checkpoint weights."""

    def __init__(self, cfg: Sa3Config):
        super().__init__()
        self.cfg = cfg
        self.dit = DiT(cfg.dit)
        self.autoencoder = SameAutoencoder(cfg.ae)
        self.seconds = SecondsConditioner(cfg.cond)
        self.prompt = PromptConditioner(cfg.cond)

    # ------------------------------------------------------------------ sizes
    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def samples_per_latent(self) -> int:
        return self.cfg.ae.downsampling_ratio

    def part_sizes(self) -> dict[str, int]:
        """Parameters (and buffers) per checkpointed part, in elements."""
        return {name: sum(t.numel() for t in getattr(self, name).state_dict().values())
                for name in ("dit", "autoencoder", "seconds", "prompt")}

    # ------------------------------------------------------------------ audio <-> latents
    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, 2, S samples at 44.1 kHz) -> latents (B, 256, T) in fp32, T = ceil(S / 8192) * 2.
        Deterministic (the SoftNorm encoder draws nothing)."""
        return self.autoencoder.encode(audio).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, generator: torch.Generator | None = None,
               noise: bool = True) -> torch.Tensor:
        """latents (B, 256, T) -> audio (B, 2, T' * 4096) fp32, T' = T rounded up to even. The official
        decoder is stochastic: noise from `generator` (None = global RNG); noise=False turns it off."""
        return self.autoencoder.decode(latents, generator=generator, noise=noise).float()

    # ------------------------------------------------------------------ conditioning
    def condition_embeddings(self, text_emb: torch.Tensor, seconds: list[float]) -> Conditioning:
        """From prompt embeddings (B, N, 768) (already padded as the conditioner does) and seconds_total
        (B values, clamped to [0, 384]) -> Conditioning."""
        sec = self.seconds(seconds)                                    # (B, 1, 768)
        cross = torch.cat([text_emb.to(sec.dtype), sec], dim=1)
        return Conditioning(cross, sec[:, 0], [float(s) for s in seconds])

    @torch.no_grad()
    def condition(self, prompts: list[str], seconds: list[float]) -> Conditioning:
        """Text prompts (B) and seconds_total (B) -> Conditioning (T5Gemma must be loaded)."""
        emb, _ = self.prompt(prompts)
        return self.condition_embeddings(emb, seconds)

    # ------------------------------------------------------------------ the network
    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning, mask: torch.Tensor | None = None,
                 masked_latents: torch.Tensor | None = None, keep: torch.Tensor | None = None,
                 cfg_scale: float = 1.0, apg_scale: float = 1.0, prepared: list | None = None) -> torch.Tensor:
        """v (B, 256, T) for x (B, 256, T) at noise level t (B,) in [0, 1].

        mask (B, T) or (B, 1, T): 1 keep, 0 generate; masked_latents (B, 256, T) = source latents * mask
        (a batch of 1 is shared by every variation).
        Both None = plain generation (the official passes an all-zero mask and zero latents then).
        keep (B, T) or (1, T) bool: the padding mask (None = every frame valid). cfg_scale != 1 adds guidance
        (APG by default, apg_scale 0 for plain CFG). prepared: `prepare(...)` with the same
        cond, mask, masked_latents and cfg_scale (saves the per-step fixed work of a trajectory).
        """
        if keep is not None:
            keep = keep.reshape(-1, x.shape[-1]).expand(x.shape[0], -1).to(x.device)
        local = None
        if prepared is None:
            local = self.local_conditioning(x.shape[0], x.shape[-1], mask, masked_latents).to(x.device, x.dtype)
        return self.dit(x, t, cond.cross, cond.glob, local, keep, cfg_scale=cfg_scale, apg_scale=apg_scale,
                        prepared=prepared)

    def local_conditioning(self, b: int, n: int, mask: torch.Tensor | None,
                           masked_latents: torch.Tensor | None) -> torch.Tensor:
        """[mask (B, 1, T), masked latents (B, 256, T)] -> (B, 257, T) float32. None stands for zeros:
        the official plain generation passes an all-zero mask and zero latents."""
        mask = torch.zeros(b, 1, n) if mask is None else mask.reshape(-1, 1, n).float().expand(b, 1, n)
        if masked_latents is None:
            masked_latents = torch.zeros(b, self.cfg.dit.io_channels, n, device=mask.device)
        masked_latents = masked_latents.float().expand(b, -1, -1)
        return torch.cat([mask.to(masked_latents.device), masked_latents], dim=1)

    @torch.no_grad()
    def prepare(self, cond: Conditioning, mask: torch.Tensor | None, masked_latents: torch.Tensor | None,
                frames: int, cfg_scale: float = 1.0) -> list:
        """The DiT's per-trajectory fixed tensors for `velocity(..., prepared=...)`."""
        local = self.local_conditioning(cond.cross.shape[0], frames, mask, masked_latents)
        return self.dit.prepare(cond.cross, local.to(cond.cross.device), cfg_scale)

    def schedule(self, steps: int, seconds_total: float | None = None, sigma_max: float = 1.0,
                 frames: int | None = None) -> torch.Tensor:
        """The configured schedule (steps + 1,) from sigma_max to 0. A length-dependent shift sees the
        effective length ceil(int(seconds_total * sr) / 4096) when the config says so, else `frames`
        (the canvas). The default shift (LogSNR, rate 0) depends on neither."""
        from .canvas import effective_latents

        s = self.cfg.sampling
        seq = frames or 1
        if s.use_effective_length_for_schedule and seconds_total is not None:
            seq = effective_latents(seconds_total, self.cfg.sample_rate, self.samples_per_latent)
        return build_schedule(steps, sigma_max, s.shift, seq, **dict(s.shift_args))

    @torch.no_grad()
    def inpaint(self, cond: Conditioning, mask: torch.Tensor | None, masked_latents: torch.Tensor | None,
                keep: torch.Tensor | None, steps: int = 8, cfg_scale: float = 1.0, apg_scale: float = 1.0,
                noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                frames: int | None = None, callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """The whole sampling trajectory -> latents (B, 256, T) in the DiT's dtype.

        noise (B, 256, T): the starting noise; when None it is drawn first from `generator` with
        shape (B, 256, frames or masked_latents' T). mask / masked_latents / keep as `velocity`;
        the ping-pong draws then come from `generator` too. callback(step, steps) after each step;
        raising from it (e.g. Cancelled) stops the trajectory.
        """
        dt = self.dit.dtype
        if noise is None:
            b = cond.cross.shape[0]
            if frames is None and masked_latents is None:
                raise ValueError("inpaint needs noise, frames or masked_latents to know the canvas length")
            n = frames if frames is not None else masked_latents.shape[-1]
            noise = torch.randn((b, self.cfg.dit.io_channels, n), generator=generator,
                                device=generator.device if generator is not None else "cpu")
        x = noise.to(self.dit.transformer.project_in.weight.device, dt)
        sigmas = self.schedule(steps, max(cond.seconds) if cond.seconds else None, frames=x.shape[-1])

        prepared = self.prepare(cond, mask, masked_latents, x.shape[-1], cfg_scale)

        def model(x, t):
            return self.velocity(x, t, cond, None, None, keep, cfg_scale, apg_scale, prepared)

        return sample_pingpong(model, x, sigmas, generator=generator, callback=callback)

    @torch.no_grad()
    def decode_canvas(self, latents: torch.Tensor, keep: torch.Tensor | None,
                      generator: torch.Generator | None = None, noise: bool = True) -> torch.Tensor:
        """Decode a sampled canvas and zero the audio past the valid frames, as the official path
        does: (B, 256, T) -> (B, 2, T * 4096) fp32 (not yet clamped nor cut)."""
        audio = self.decode(latents, generator=generator, noise=noise)
        if keep is not None:
            m = keep.to(audio.dtype).repeat_interleave(self.samples_per_latent, dim=-1)[:, None, :]
            m = torch.nn.functional.pad(m, (0, max(0, audio.shape[-1] - m.shape[-1])))[..., :audio.shape[-1]]
            audio = audio * m
        return audio
