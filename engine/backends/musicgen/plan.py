"""Length arithmetic for MusicGen continuations: tokens, prompt windows and chunks (pure functions).

MusicGen works at 32 kHz mono on EnCodec frames of 640 samples (50 frames/s) with a delay pattern
over 4 codebooks. Checked against transformers 5.24 (tests/test_musicgen_generation.py):
a prompt of `prompt_samples` is encoded to P = ceil(prompt_samples / 640) frames, and asking
generate() for N new tokens returns P + N - 3 frames of audio (the BOS token and the 3-step delay
of the last codebook cost 3 tokens). For D seconds in all (prompt included) ask for
N = ceil(50 D) - P + 3 and cut to round(32000 D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...timeline import Grid

MODEL_SR = 32000
HOP = 640                      # samples per EnCodec frame at 32 kHz
FRAME_RATE = MODEL_SR // HOP   # 50 frames/s
DELAY = 3                      # num_codebooks - 1
MIN_FRAMES = 4                 # shorter outputs come back garbled from generate()'s delay-pattern revert


def prompt_frames(prompt_samples: int) -> int:
    """EnCodec frames a prompt of `prompt_samples` (32 kHz) is encoded to: ceil(n / 640)."""
    return -(-int(prompt_samples) // HOP)


def new_tokens(prompt_samples: int, total_seconds: float, margin_frames: int = 0) -> int:
    """Tokens to ask generate() for so the output covers `total_seconds` (prompt included):
    N = ceil(50 D) - P + 3 (+ margin frames), at least enough for MIN_FRAMES frames in all (transformers
    5.24 returns 4 frames for "1 frame" with no prompt: the pad filter of the delay-pattern revert
    miscounts below 3 frames; the caller cuts to length anyway). Raises ValueError when D does not
    exceed the prompt."""
    p = prompt_frames(prompt_samples)
    n = math.ceil(FRAME_RATE * total_seconds - 1e-9) - p + DELAY + int(margin_frames)
    if n <= DELAY:
        raise ValueError(f"{total_seconds:.3f} s in all leaves no frame after a {prompt_samples / MODEL_SR:.3f} s prompt")
    return max(n, MIN_FRAMES - p + DELAY)


def output_frames(prompt_samples: int, n_tokens: int) -> int:
    """Frames of audio generate() returns for a prompt and N new tokens: P + N - 3."""
    return prompt_frames(prompt_samples) + int(n_tokens) - DELAY


@dataclass(frozen=True)
class PromptWindow:
    start: int            # first prompt sample, in the timeline's samples (project rate)
    samples: int          # prompt length in project samples (end = the join)
    samples32: int        # the same span at 32 kHz: a whole number of EnCodec frames


def choose_prompt(end: int, sr: int, max_seconds: float, grid: Grid | None, min_seconds: float = 0.5) -> PromptWindow:
    """The prompt for audio that continues at timeline sample `end`: at most `max_seconds` of the
    audio before `end`, starting on a bar line when a grid is known (so the model hears whole bars
    ending at the join), trimmed to a whole number of 20 ms EnCodec frames from the left so the
    generated frames start exactly at the join (a partial last frame would be heard as silence).
    A prompt shorter than one frame is empty (samples == 0: generate from the text alone)."""
    if end <= 0 or max_seconds <= 0:
        return PromptWindow(end, 0, 0)
    earliest = max(end - int(math.floor(max_seconds * sr)), 0)
    start = earliest
    if grid is not None and grid.bar_seconds > 0:
        k = math.ceil((earliest / sr - grid.downbeat) / grid.bar_seconds - 1e-9)
        bar = int(round((grid.downbeat + k * grid.bar_seconds) * sr))
        if bar >= earliest and end - bar >= min_seconds * sr:
            start = bar
    frames = int((end - start) * MODEL_SR // (sr * HOP))          # whole 20 ms frames that fit
    if frames <= 0:
        return PromptWindow(end, 0, 0)
    samples32 = frames * HOP
    samples = int(round(samples32 * sr / MODEL_SR))                # exact when sr is a multiple of 50
    return PromptWindow(end - samples, samples, samples32)


def chunk_new_samples(remaining: int, sr: int, prompt32: int, window_seconds: float, margin_frames: int) -> int:
    """Project samples of new audio the next chunk may hold: what is left of the model's window
    after the prompt (and the resampling margin), at most `remaining`."""
    room_frames = int(window_seconds * FRAME_RATE) - prompt_frames(prompt32) - margin_frames
    room = int(room_frames * HOP * sr // MODEL_SR)
    if room < sr // FRAME_RATE:
        raise ValueError("the model window leaves no room after the prompt; lower prompt_seconds")
    return min(remaining, room)
