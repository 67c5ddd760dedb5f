"""One validation step: a Request plus its decoded source -> the Task a backend gets.

Every span check lives here, with one tolerance, so no backend ever receives a
span outside its audio:

- seconds become samples at the output rate `sr` (protocol v1 rounding,
  round half up): inpaint [start, end) -> (start_sample, frames), continue
  `at` -> start_sample;
- a selection may end up to END_SLACK_SAMPLES past the end of the source
  (float rounding in a DAW, a rate conversion's half sample): the backend's
  span is clamped to the audio and the written file is padded to the exact
  length the protocol promises (`Plan.out_frames`);
- further past the end is `bad_region`;
- outputs too large for a WAV file (4 GiB) or for memory are `too_long`,
  before anything is rendered;
- the Task's audio is only the window the backend declares
  (`Capabilities.max_context_seconds` each side, `context_window`), with
  positions, regions and the grid's downbeat relative to that window.

Limits that need no file (`check_output_length`) run before a request is
accepted; the rest runs in the worker, once the source is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .audio_io import Source
from .backends.base import Capabilities, Task
from .errors import SegueError
from .request import Request
from .timeline import bars_to_samples, round_half_up, span_to_samples

END_SLACK_SAMPLES = 2               # how far past the source's end a span may reach (samples at `sr`)
GENERATE_SR = 44100                 # generate without `sr`
GENERATE_CHANNELS = 2
DEFAULT_MAX_OUTPUT_SECONDS = 600.0  # for a backend whose Capabilities leave max_output_seconds unset
WAV_MAX_BYTES = 2**32 - 1           # RIFF sizes are 32-bit
WAV_HEADER_BYTES = 4096             # generous: RIFF + fmt + fact + any chunk a writer adds
MAX_RENDER_BYTES = 4 << 30          # all variations of one request together, as float32


@dataclass
class Plan:
    task: Task
    out_frames: int                 # samples in each written file (the protocol's exact length)
    window: tuple[int, int] | None = None   # source samples [lo, hi) the task needs, while not yet read


def read_window(plan: Plan, source, check=None) -> Plan:
    """The plan with its task's audio: the window that make_task(read=False) chose, read once.
    A plan whose audio is already read (or that needs none: generate) comes back as it is."""
    if plan.window is None:
        return plan
    lo, hi = plan.window
    return Plan(_windowed(plan.task, source, lo, hi, check), plan.out_frames)


def _too_long(message: str) -> SegueError:
    return SegueError("too_long", message)


def _hms(seconds: float) -> str:
    if seconds >= 1e7:  # END 1e308 printed a 309-digit number of seconds
        return f"{seconds:.3g} s"
    if seconds >= 3600:
        return f"{seconds:.0f} s ({seconds / 3600:.1f} h)"
    return f"{seconds:.1f} s"


def check_output_length(req: Request, backend: str, caps: Capabilities) -> None:
    """Refuse an output longer than the backend makes; needs no file. Raises SegueError('too_long')."""
    seconds = req.output_seconds()
    limit = caps.max_output_seconds or DEFAULT_MAX_OUTPUT_SECONDS
    if seconds is not None and seconds > limit:
        raise _too_long(f"the output would last {_hms(seconds)}; backend {backend} makes at most "
                        f"{limit:g} s per request")


def check_source_length(path: str, seconds: float, limit: float) -> None:
    """Refuse a source longer than the engine's --max-source-seconds (from its header)."""
    if seconds > limit:
        raise _too_long(f"source {path} lasts {_hms(seconds)}; this engine reads at most {limit:g} s "
                        "(segue serve --max-source-seconds)")


def check_output_size(frames: int, channels: int, variations: int) -> None:
    """Refuse outputs a WAV file cannot hold, or that would not fit in memory all together."""
    per_file = frames * channels * 4 + WAV_HEADER_BYTES
    if per_file > WAV_MAX_BYTES:
        raise _too_long(f"one output of {frames} samples x {channels} channels would be {per_file / 2**30:.1f} GiB; "
                        "a WAV file holds at most 4 GiB")
    total = frames * channels * 4 * variations
    if total > MAX_RENDER_BYTES:
        raise _too_long(f"{variations} variations of {frames} samples x {channels} channels need "
                        f"{total / 2**30:.1f} GiB; at most {MAX_RENDER_BYTES / 2**30:g} GiB per request "
                        "(ask for fewer variations or a lower sr)")


def backend_options(options: dict, backend: str) -> dict:
    """Request options for `backend`: plain keys for any backend, `NAME.KEY` only when NAME runs it."""
    out = {k: v for k, v in options.items() if "." not in k}
    prefix = backend + "."
    out.update({k[len(prefix):]: v for k, v in options.items() if k.startswith(prefix)})
    return out


def context_window(kind: str, start: int, frames: int, n: int, sr: int,
                   caps: Capabilities | None) -> tuple[int, int]:
    """Samples [lo, hi) of the source (n samples at sr) a backend sees for a span [start, start + frames)
    (continue: start = `at`, nothing after it): `caps.max_context_seconds` each side of the span
    (continue: before `at`), the whole source when the backend sets no limit. Never cuts the span."""
    if kind == "continue":
        hi = min(start, n)
    else:
        hi = min(start + frames, n)
    limit = caps.max_context_seconds if caps is not None else None
    if not limit:
        return 0, hi if kind == "continue" else n
    w = int(limit * sr)
    lo = max(start - w, 0)
    return lo, hi if kind == "continue" else min(hi + w, n)


def _windowed(task: Task, source, lo: int, hi: int, check=None) -> Task:
    """The task on samples [lo, hi) of the source: positions, regions and the grid's downbeat
    shifted by lo, so a backend never sees (or needs) the rest of the file."""
    audio = source.window(lo, hi, check) if hasattr(source, "window") else source.audio[:, lo:hi]
    readable = lo + audio.shape[1]
    if readable < hi:   # the file decodes only so far (cut short or damaged), less than its header says
        need = task.start_sample + (task.frames if task.kind == "inpaint" else 0)
        if readable < need:   # the same answer as once the short decode is cached (make_task's bad_region)
            raise SegueError("bad_region", f"the span lies outside the audio the file holds ({readable / task.sr:.6f} s "
                             f"long: it decodes only so far of the {source.frames / task.sr:.3f} s its header "
                             "states, cut short or damaged after that)")
    if lo == 0 and (task.kind == "continue" or hi == source.frames):   # the audio as before windows
        return replace(task, audio=audio)
    grid = replace(task.grid, downbeat=task.grid.downbeat - lo / task.sr) if task.grid is not None else None
    # source_key stays the file's content key: caches index by absolute position (window_start + i),
    # so an encoded latent frame or a feature is reused by any later edit whose window overlaps.
    return replace(task, audio=audio, start_sample=task.start_sample - lo, grid=grid, window_start=lo,
                   regions=[(r0 - lo, rl) for r0, rl in task.regions])


def make_task(req: Request, source: Source | None, backend: str = "",
              caps: Capabilities | None = None, check=None, read: bool = True) -> Plan:
    """The one function from a request (seconds) and its opened source to the backend's Task (samples).

    `source` (audio_io.SourceFile or Source) is at `source.sr`, the output rate; `backend` (the name
    of the backend that will run it) picks its own `NAME.KEY` options into Task.options. The task's
    `audio` is the window `context_window` gives for `caps` (positions relative to it, and
    `Task.window_start` says where the window starts in the source). With `read=False` nothing is read:
    the task's audio is None, regions are absolute in the source, and `Plan.window` holds the window
    for `read_window` (so the engine can still change its mind about the backend for free).
    Raises SegueError: bad_region (span outside the audio, or shorter than a sample), too_long,
    bad_option (a `BACKEND.KEY` option `caps.request_options` does not list).
    """
    options = backend_options(req.options, backend)
    known = caps.request_options if caps is not None else None
    unknown = sorted(set(options) - known) if known is not None else []
    if unknown:
        takes = ", ".join(f"{backend}.{k}" for k in sorted(known)) or "none"
        raise SegueError("bad_option", f"backend {backend} has no request option {unknown[0]!r} (it takes: {takes})")
    common = dict(grid=req.grid, prompt=req.prompt, seed=req.seed, variations=req.variations,
                  hit=req.hit, options=options)
    if req.kind == "generate":
        sr = req.sr or GENERATE_SR
        frames = bars_to_samples(req.bars, req.grid, sr)
        _need_samples(frames, f"{req.bars:g} bars")
        check_output_size(frames, GENERATE_CHANNELS, req.variations)
        task = Task(kind="generate", sr=sr, channels=GENERATE_CHANNELS, start_sample=0, frames=frames, **common)
        return Plan(task, frames)
    if source is None:
        raise SegueError("bad_request", f"{req.kind} needs a source file")
    sr, n = source.sr, source.frames
    seconds = source.file_seconds
    if req.kind == "inpaint":
        start, length = span_to_samples(req.start, req.end, sr)
        _need_samples(length, f"region {req.start:.10g}-{req.end:.10g} s")
        if start >= n + END_SLACK_SAMPLES or start + length > n + END_SLACK_SAMPLES:
            raise SegueError("bad_region", f"region {req.start:.10g}-{req.end:.10g} s lies outside the file "
                             f"({seconds:.6f} s long)")
        if start >= n:    # a selection of the last source sample(s), rounded past the end at a lower rate:
            start = max(n - length, 0)   # the backend regenerates the last sample(s) of the audio
        frames = min(length, n - start)   # clamp the last sample or two; the file is padded back to `length`
        regions = _regions_to_samples(req, sr, start, frames)
        check_output_size(length, source.channels, req.variations)
        task = Task(kind="inpaint", sr=sr, channels=source.channels, start_sample=start, frames=frames,
                    source_key=source.key, regions=regions, **common)
        plan = Plan(task, length, context_window("inpaint", start, frames, n, sr, caps))
        return read_window(plan, source, check) if read else plan
    at = round_half_up(req.at * sr)
    if at > n + END_SLACK_SAMPLES:
        raise SegueError("bad_region", f"at {req.at:.10g} s lies past the end of the file ({seconds:.6f} s)")
    at = min(at, n)
    if at <= 0:
        raise SegueError("bad_region", f"at {req.at:.10g} s leaves no audio before it to continue")
    frames = bars_to_samples(req.bars, req.grid, sr)
    _need_samples(frames, f"{req.bars:g} bars")
    check_output_size(frames, source.channels, req.variations)
    task = Task(kind="continue", sr=sr, channels=source.channels, start_sample=at, frames=frames,
                source_key=source.key, **common)
    plan = Plan(task, frames, context_window("continue", at, frames, n, sr, caps))
    return read_window(plan, source, check) if read else plan


def _need_samples(frames: int, what: str) -> None:
    if frames <= 0:
        raise SegueError("bad_region", f"{what} is shorter than one sample")


def _regions_to_samples(req: Request, sr: int, start: int, frames: int) -> list[tuple[int, int]]:
    """Inpaint `regions` (seconds, inside [start, end)) -> (start_sample, frames) pairs inside the task's span."""
    out: list[tuple[int, int]] = []
    lo, hi = start, start + frames
    for s, e in req.regions:
        a = min(max(round_half_up(s * sr), lo), hi)
        b = min(max(round_half_up(e * sr), lo), hi)
        if b <= a:
            raise SegueError("bad_region", f"region {s:.10g}:{e:.10g} s is shorter than one sample at {sr} Hz "
                             "(or lies past the end of the file)")
        out.append((a, b - a))
    return out
