"""Canvas arithmetic of the official Stable Audio 3 generate path, as pure functions.

Follows `generate_diffusion_cond_inpaint` in stable-audio-tools 0.0.20
(`inference/generation.py`, `inference/sampling.py`) and the official
`Stability-AI/stable-audio-3` `generate()`. All lengths are in samples at the model
rate (44100 Hz) or in latent frames (4096 samples each for SAME-S).

- canvas: int((seconds_total + padding) * sr) samples rounded up to whole encoder
  chunks (2 latent frames = 8192 samples), capped at the model's sample_size; so the
  latent count is always even (3 s -> 98, 5 s -> 120 latent frames).
- mask (1 keep, 0 generate): 0 on [int(start * sr), int(end * sr)) of every region and
  from int(seconds_total * sr) on; latent frame i takes the sample mask at i * 4096
  (nearest), i.e. it is generated iff start <= i * 4096 < end for some region.
- padding mask: the first ceil(int(seconds_total * sr) / 4096) + int(padding * sr / 4096)
  latent frames are valid (capped at the canvas).
"""

from __future__ import annotations

import math

import torch

DURATION_PADDING_S = 6.0
SAMPLES_PER_LATENT = 4096


def seconds_to_samples(seconds: float, sample_rate: int = 44100) -> int:
    """int(seconds * sr): the official truncation, used for every boundary."""
    return int(seconds * sample_rate)


def canvas_samples(seconds_total: float, sample_rate: int = 44100, padding_s: float = DURATION_PADDING_S,
                   ratio: int = SAMPLES_PER_LATENT, latent_align: int = 2, max_samples: int = 5292032) -> int:
    """Samples in the canvas for an output of seconds_total: (seconds + padding) rounded up to
    ratio x latent_align, capped at max_samples. Raises ValueError for seconds_total <= 0."""
    if not seconds_total > 0:
        raise ValueError(f"seconds_total must be > 0, got {seconds_total}")
    n = seconds_to_samples(seconds_total + padding_s, sample_rate)
    align = ratio * latent_align
    return min(-(-n // align) * align, max_samples)


def latent_count(samples: int, ratio: int = SAMPLES_PER_LATENT) -> int:
    """Latent frames for a canvas of `samples` (the canvas is a whole number of frames)."""
    return samples // ratio


def valid_latents(seconds_total: float, frames: int, sample_rate: int = 44100, padding_s: float = DURATION_PADDING_S,
                  ratio: int = SAMPLES_PER_LATENT) -> int:
    """Latent frames that attention treats as real: ceil(int(seconds * sr) / ratio) + int(padding * sr / ratio),
    capped at `frames` (the canvas)."""
    raw = math.ceil(seconds_to_samples(seconds_total, sample_rate) / ratio)
    return min(raw + int(padding_s * sample_rate / ratio), frames)


def effective_latents(seconds_total: float, sample_rate: int = 44100, ratio: int = SAMPLES_PER_LATENT) -> int:
    """ceil(int(seconds * sr) / ratio): the length the schedule's shift sees (when it depends on it)."""
    return math.ceil(seconds_to_samples(seconds_total, sample_rate) / ratio)


def padding_mask(seconds_total: float, frames: int, batch: int = 1, sample_rate: int = 44100,
                 padding_s: float = DURATION_PADDING_S, ratio: int = SAMPLES_PER_LATENT) -> torch.Tensor:
    """(batch, frames) bool, True on the valid latent frames."""
    n = valid_latents(seconds_total, frames, sample_rate, padding_s, ratio)
    return (torch.arange(frames) < n)[None].expand(batch, frames).clone()


def latent_mask(regions: list[tuple[int, int]], frames: int, end_sample: int | None = None,
                ratio: int = SAMPLES_PER_LATENT) -> torch.Tensor:
    """Inpainting mask over latent frames (frames,) float32: 1 keep, 0 generate.

    regions: [(start_sample, end_sample), ...] to generate (end exclusive, clamped to the canvas);
    end_sample: everything from this sample on is generated too (the official rule past
    seconds_total when the padding mask is used). Frame i is generated iff a region holds i * ratio.
    """
    pos = torch.arange(frames) * ratio
    keep = torch.ones(frames)
    canvas = frames * ratio
    for start, end in regions:
        start, end = min(int(start), canvas), min(int(end), canvas)
        keep[(pos >= start) & (pos < end)] = 0
    if end_sample is not None:
        keep[pos >= int(end_sample)] = 0
    return keep


def seconds_regions(regions_s: list[tuple[float, float]], sample_rate: int = 44100) -> list[tuple[int, int]]:
    """[(start_s, end_s)] -> [(int(start * sr), int(end * sr))], the official conversion."""
    return [(seconds_to_samples(a, sample_rate), seconds_to_samples(b, sample_rate)) for a, b in regions_s]


def fit_to_canvas(audio: torch.Tensor, samples: int) -> torch.Tensor:
    """(..., S) -> (..., samples): crop, or zero-pad at the end (official PadCrop, not randomised)."""
    s = audio.shape[-1]
    if s >= samples:
        return audio[..., :samples]
    return torch.nn.functional.pad(audio, (0, samples - s))
