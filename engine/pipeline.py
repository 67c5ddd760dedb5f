"""The one path from a validated request to written clips.

    source file --read+resample--> Task --backend--> arrays --exact length--> WAV files

Times become samples here, at the output rate, so every backend works on the
timeline the DAW will play: the region [start, end) of the source resampled to
`sr` is exactly the region the output replaces.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_io import Source, SourceReader, fit_length, match_channels, safe_stem, write_wav_atomic
from .backends.base import Backend, JobContext, Task
from .errors import SegueError
from .paths import OutputRoots
from .timeline import Grid, bars_to_samples, round_half_up, span_to_samples

log = logging.getLogger("segue.pipeline")

GENERATE_SR = 44100


@dataclass
class Result:
    paths: list[Path]
    seconds: float
    sr: int


def make_grid(opts: dict) -> Grid | None:
    if "bpm" not in opts:
        return None
    num, den = opts.get("sig", (4, 4))
    return Grid(bpm=opts["bpm"], num=num, den=den, downbeat=opts.get("downbeat", 0.0))


def check_region(req, seconds: float) -> None:
    """Refuse regions outside a file of `seconds` (half a sample of slack at 8 kHz for rounding)."""
    slack = 1.0 / 16000
    if req.kind == "inpaint" and req.end > seconds + slack:
        raise SegueError("bad_region", f"region {req.start:g}-{req.end:g} s lies outside the file "
                         f"({seconds:.3f} s long)")
    if req.kind == "continue" and req.at > seconds + slack:
        raise SegueError("bad_region", f"at {req.at:g} s lies past the end of the file ({seconds:.3f} s)")


def build_task(req, source: Source | None) -> Task:
    """Turn a request (bridge.protocol.Request) into the backend's sample-exact Task."""
    opts = req.opts
    grid = make_grid(opts)
    common = dict(grid=grid, prompt=opts.get("prompt", ""), seed=opts.get("seed", 0),
                  variations=opts.get("variations", 1))
    if req.kind == "generate":
        sr = opts.get("sr", GENERATE_SR)
        return Task(kind="generate", sr=sr, channels=2, start_sample=0,
                    frames=bars_to_samples(req.bars, grid, sr), **common)
    sr = source.sr
    if req.kind == "inpaint":
        start, length = span_to_samples(req.start, req.end, sr)
        if start + length > source.frames + 1:  # one sample of slack for rounding at the very end
            raise SegueError("bad_region", f"region {req.start:g}-{req.end:g} s lies outside the file "
                             f"({source.file_seconds:.3f} s long)")
        if length <= 0:
            raise SegueError("bad_region", f"region {req.start:g}-{req.end:g} s is shorter than one sample")
        return Task(kind="inpaint", sr=sr, channels=source.channels, start_sample=start, frames=length,
                    audio=source.audio, source_key=source.key, **common)
    at = round_half_up(req.at * sr)
    if at > source.frames + 1:
        raise SegueError("bad_region", f"at {req.at:g} s lies past the end of the file ({source.file_seconds:.3f} s)")
    at = min(at, source.frames)
    return Task(kind="continue", sr=sr, channels=source.channels, start_sample=at,
                frames=bars_to_samples(req.bars, grid, sr), audio=source.audio[:, :at],
                source_key=source.key, **common)


def output_names(req, n: int) -> list[str]:
    stem = safe_stem(Path(req.src).stem) if req.src else "segue"
    tag = uuid.uuid4().hex[:6]
    return [f"{stem}-{req.kind}-{safe_stem(req.id, 24)}-{tag}-v{k + 1}.wav" for k in range(n)]


def render(req, backend: Backend, reader: SourceReader, roots: OutputRoots, ctx: JobContext) -> Result:
    out_dir = roots.resolve(req.opt("out"))
    ctx.progress(0.0, "analyse")
    source = reader.read(req.src, req.opt("sr"), check=ctx.check) if req.src else None
    task = build_task(req, source)
    ctx.check()
    outputs = backend.run(task, ctx)
    if not 1 <= len(outputs) <= task.variations:  # fewer = the backend could not make more distinct takes
        raise SegueError("internal", f"backend {backend.name} returned {len(outputs)} outputs, "
                         f"{task.variations} asked")
    clips = []
    for y in outputs:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1:
            y = y[None]
        if abs(y.shape[-1] - task.frames) > 2:
            raise SegueError("internal", f"backend {backend.name} returned {y.shape[-1]} samples, "
                             f"{task.frames} asked")
        y = fit_length(match_channels(y, task.channels), task.frames)
        clips.append(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0))
    ctx.progress(0.97, "write")
    written: list[Path] = []
    try:
        for name, y in zip(output_names(req, len(clips)), clips):
            written.append(write_wav_atomic(out_dir, name, y, task.sr))
    except BaseException:
        for p in written:  # all variations or none
            try:
                os.unlink(p)
            except OSError:
                pass
        raise
    return Result(paths=written, seconds=task.frames / task.sr, sr=task.sr)
