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
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_io import (SourceReader, channel_mask, fit_length, match_channels, probe, safe_stem, silent_unlink,
                       write_wav_atomic)
from .backends.base import Backend, JobContext
from .errors import SegueError
from .paths import OutputRoots, SourceDirs
from .request import Request
from .validate import check_source_length, make_task, read_window

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


IO_POLL_SECONDS = 0.05


def off_worker(ctx: JobContext, fn, *args, late=None):
    """fn(*args) on a short-lived thread while the worker keeps checking `ctx` (cancel, time limit).

    A source or output folder on a drive that stops answering (a NAS asleep, a pulled USB disk, a
    dead network mount) blocks a read or write in the kernel, where no check can run: it then
    blocks this thread, not the engine's one worker, which answers the request (cancelled or
    timeout) and takes the next one. The abandoned thread ends when the call returns, if ever;
    `late(value)` then undoes what it did (a file written after its request was answered).
    Returns fn's value; raises what fn raises, or Cancelled / TimedOut."""
    box: dict = {}
    lock = threading.Lock()

    def run():
        try:
            value = fn(*args)
        except BaseException as e:
            box["error"] = e
            return
        with lock:
            box["value"] = value
            abandoned = box.get("abandoned", False)
        if abandoned and late is not None:
            late(value)

    t = threading.Thread(target=run, name="segue-io", daemon=True)
    t.start()
    while True:
        t.join(IO_POLL_SECONDS)
        if not t.is_alive():
            break
        try:
            ctx.check()
        except BaseException:
            with lock:
                box["abandoned"] = True
                done = "value" in box
            if done and late is not None:   # it finished just now: undo it here
                late(box["value"])
            raise
    if "error" in box:
        raise box["error"]
    return box["value"]


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


def _hit_remover(task, caps, removers: dict[str, Backend]) -> str | None:
    """The backend to serve an inpaint with hit "remove" whose every region is shorter than that
    backend's short selection (counted in samples, as it counts them), when the asked backend
    cannot remove hits; None to keep the asked one."""
    if task.kind != "inpaint" or task.hit != "remove" or caps.removes_hits:
        return None
    for name, b in removers.items():
        limit = b.capabilities().short_selection_seconds * task.sr
        if all(n < limit for _, n in task.regen_regions()):
            return name
    return None


def render(req: Request, backend: Backend, reader: SourceReader, roots: OutputRoots, ctx: JobContext,
           limits: Limits | None = None, backend_name: str | None = None,
           removers: dict[str, Backend] | None = None) -> Result:
    """Run one request to written files. Raises SegueError (cancelled and timeout included).

    `backend_name`: the engine's name for `backend` (default backend.name), for its own options.
    `removers`: backends that honour `hit remove` (dsp); an inpaint with `hit remove` whose every region
    is a short selection for one of them is served by it when `backend` cannot remove hits."""
    limits = limits or Limits()
    ctx.progress(0.0, "analyse")
    folder = off_worker(ctx, out_folder, roots, req.out)
    source = None
    if req.src is not None:
        if limits.source_dirs is not None:
            off_worker(ctx, limits.source_dirs.check, req.src)
        seconds, _ = off_worker(ctx, probe, req.src)
        check_source_length(req.src, seconds, limits.max_source_seconds)
        ctx.check()
        # header only: read_window reads what the backend needs
        source = off_worker(ctx, reader.open, req.src, req.sr, ctx.check)
    caps = backend.capabilities()
    plan = make_task(req, source, backend_name or backend.name, caps=caps, read=False)
    remover = _hit_remover(plan.task, caps, removers or {})
    if remover is not None:   # "remove this hit" is interpolation, not generation
        ctx.progress(0.0, f"hit remove: the short selection is interpolated by {remover}, "
                          f"not generated by {backend_name or backend.name}")
        backend, backend_name = removers[remover], remover
        plan = make_task(req, source, remover, caps=backend.capabilities(), read=False)
    plan = off_worker(ctx, read_window, plan, source, ctx.check)   # once, for the backend that runs it
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
    # a surround source's speaker layout (5.1 with side or back surrounds, or none) stays the output's
    mask = off_worker(ctx, channel_mask, req.src) if source is not None and task.channels > 2 else None
    written: list[Path] = []
    try:
        for name, y in zip(output_names(req, len(clips)), clips):
            ctx.check()
            written.append(off_worker(ctx, write_wav_atomic, folder, name, y, task.sr, mask, late=silent_unlink))
    except BaseException:
        for p in written:  # all variations or none
            silent_unlink(p)
        raise
    return Result(paths=written, seconds=plan.out_frames / task.sr, sr=task.sr)
