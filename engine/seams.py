"""Click-free joins between generated audio and the source around it.

Both the dsp and the neural backends hand back audio for a span of the source.
Its first samples fade in from an AR extrapolation of the source just before
the span, and (for inpaint) its last samples fade out into a backward
extrapolation of the source just after it, so the DAW's cut at each edge
continues the waveform, and none of the span's old audio leaks in.
"""

from __future__ import annotations

import numpy as np

from .dsp.janssen import ar_extrapolate

CONTEXT = 4096       # source samples the AR model is fitted on
MIN_CONTEXT = 64     # below this, no extrapolation: the edge is left as generated
# A region that ends where the source has a hard onset (a selection up to the next drum hit): the
# backward extrapolation of that hit faded in a burst of its energy in front of it (0.21 RMS where
# the source had 0.002). When the source's level rises this much across the edge (RMS over one fade
# after it against one fade before it, the original audio), the generated end is left as it is and
# the hit starts on it sharply, as it does in the source.
ONSET_RATIO = 4.0


def equal_power(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade_out, fade_in) of n samples with fade_out^2 + fade_in^2 = 1."""
    th = (np.arange(n, dtype=np.float64) + 0.5) / n * (np.pi / 2)
    return np.cos(th).astype(np.float32), np.sin(th).astype(np.float32)


def join_source(y: np.ndarray, audio: np.ndarray, start: int, fade: int, right: bool = True) -> np.ndarray:
    """Crossfade y (channels, L), which replaces audio[:, start:start + L], into its surroundings in place.

    `right=False` for continuations: nothing after the span is known.
    """
    L = y.shape[1]
    if fade < 1:
        return y
    fo, fi = equal_power(fade)
    if start >= MIN_CONTEXT:
        lead = ar_extrapolate(audio[:, max(start - CONTEXT, 0):start], fade)
        y[:, :fade] = lead * fo + y[:, :fade] * fi
    end = start + L
    if right and audio.shape[1] - end >= MIN_CONTEXT and not onset_at(audio, end, fade):
        tail = ar_extrapolate(audio[:, end:end + CONTEXT][:, ::-1], fade)[:, ::-1]
        y[:, L - fade:] = y[:, L - fade:] * fo + tail * fi
    return y


def onset_at(audio: np.ndarray, i: int, n: int) -> bool:
    """True when the level of audio (channels, frames) rises by ONSET_RATIO or more at sample i: RMS of
    audio[:, i:i + n] against audio[:, i - n:i]."""
    before = audio[:, max(i - n, 0):i]
    after = audio[:, i:i + n]
    if before.shape[1] == 0 or after.shape[1] == 0:
        return False
    rb = float(np.sqrt(np.mean(np.square(before, dtype=np.float64))))
    ra = float(np.sqrt(np.mean(np.square(after, dtype=np.float64))))
    return ra > ONSET_RATIO * rb + 1e-6
