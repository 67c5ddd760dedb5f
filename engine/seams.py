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
    if right and audio.shape[1] - end >= MIN_CONTEXT:
        tail = ar_extrapolate(audio[:, end:end + CONTEXT][:, ::-1], fade)[:, ::-1]
        y[:, L - fade:] = y[:, L - fade:] * fo + tail * fi
    return y
