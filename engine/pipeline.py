"""The one path from an accepted request to written clips (runs in the engine's worker thread).

    out folder --resolve--> source --header: limits--> open --validate: read the window--> Task
        --backend--> 1..N arrays --exact length--> WAV files

Times become samples in engine/validate.py, at the output rate, so every
backend works on the timeline the DAW will play: the region [start, end) of
the source resampled to `sr` is exactly the region the output replaces.
Everything that touches the disk happens here, never in the OSC receive thread.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_io import SourceReader, fit_length, match_channels, probe, safe_stem, write_wav_atomic
from .backends.base import Backend, JobContext
from .errors import SegueError
from .paths import OutputRoots, SourceDirs
from .request import Request
from .validate import check_source_length, make_task

log = logging.getLogger("segue.pipeline")


@dataclass
class Result:
    paths: list[Path]
    seconds: float
    sr: int                        # len(paths) may be fewer than the variations asked (distinct results)


@dataclass
class Limits:
    max_source_seconds: float = 3600.0
    source_dirs: SourceDirs | None = None   # None: any readable file (loopback mode)


def output_names(req: Request, n: int) -> list[str]:
    stem = safe_stem(Path(req.src).stem) if req.src else "segue"
    tag = uuid.uuid4().hex[:6]
    return [f"{stem}-{req.kind}-{safe_stem(req.id, 24)}-{tag}-v{k + 1}.wav" for k in range(n)]


def out_folder(roots: OutputRoots, out: str | None) -> Path:
    folder = roots.resolve(out)
    try:
        str(folder).encode("utf-8")
    except UnicodeEncodeError:
        # A reply carries the path as an OSC string (UTF-8): a client could not use such a path.
        shown = str(folder).encode("utf-8", "replace").decode("utf-8")
        raise SegueError("bad_out", f"output folder {shown} is not valid UTF-8; choose another with `out`") from None
    return folder


def render(req: Request, backend: Backend, reader: SourceReader, roots: OutputRoots, ctx: JobContext,
           limits: Limits | None = None, backend_name: str | None = None) -> Result:
    """Run one request to written files. Raises SegueError (cancelled and timeout included).

    `backend_name`: the engine's name for `backend` (default backend.name), for its own options."""
    limits = limits or Limits()
    ctx.progress(0.0, "analyse")
    folder = out_folder(roots, req.out)
    source = None
    if req.src is not None:
        if limits.source_dirs is not None:
            limits.source_dirs.check(req.src)
        seconds, _ = probe(req.src)
        check_source_length(req.src, seconds, limits.max_source_seconds)
        ctx.check()
        source = reader.open(req.src, req.sr, ctx.check)   # header only: make_task reads the window it needs
    plan = make_task(req, source, backend_name or backend.name, caps=backend.capabilities(), check=ctx.check)
    task = plan.task
    ctx.check()
    outputs = list(backend.run(task, ctx))
    if not 1 <= len(outputs) <= task.variations:
        raise SegueError("internal", f"backend {backend.name} returned {len(outputs)} outputs, "
                         f"1 to {task.variations} asked")
    clips = []
    for y in outputs:
        ctx.check()
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 1:
            y = y[None]
        if abs(y.shape[-1] - task.frames) > 2:
            raise SegueError("internal", f"backend {backend.name} returned {y.shape[-1]} samples, "
                             f"{task.frames} asked")
        y = fit_length(match_channels(y, task.channels), plan.out_frames)
        clips.append(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0))
    if len(clips) < task.variations:
        ctx.progress(0.96, f"{len(clips)} of {task.variations} distinct variations")
    ctx.progress(0.97, "write")
    written: list[Path] = []
    try:
        for name, y in zip(output_names(req, len(clips)), clips):
            ctx.check()
            written.append(write_wav_atomic(folder, name, y, task.sr))
    except BaseException:
        for p in written:  # all variations or none
            try:
                os.unlink(p)
            except OSError:
                pass
        raise
    return Result(paths=written, seconds=plan.out_frames / task.sr, sr=task.sr)
