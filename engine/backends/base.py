"""The backend interface every generator plugs into (dsp, sao-small, sa3-small, musicgen).

The engine does all protocol work (validation, reading and resampling the
source, exact lengths, writing files). A backend only turns a `Task` into audio:

    backend = SomeBackend(BackendConfig(...))
    backend.load()                      # once, at engine start; keeps weights warm
    backend.capabilities()              # what it can do
    backend.inpaint(task, ctx)          # -> list of (channels, task.frames) float32 arrays
    backend.continue_(task, ctx)        # one array per variation, at task.sr
    backend.generate(task, ctx)

Contract for the returned arrays: float32, shape (task.channels, task.frames),
sample rate task.sr. Inpaint output covers [task.start_sample, task.start_sample + task.frames)
of task.audio and must join it without a click at both edges; continue output
starts at task.start_sample (task.audio ends there) and must join it without a click.
A backend that works at its own rate (44.1 kHz for Stable Audio) resamples in
and out itself. Long loops call ctx.step(...) so cancellation and timeouts
take effect between steps.
"""

from __future__ import annotations

import re
import time
from abc import ABC
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from ..errors import Cancelled, SegueError, TimedOut
from ..timeline import Grid

TaskKind = Literal["inpaint", "continue", "generate"]


@dataclass(frozen=True)
class Capabilities:
    inpaint: bool
    continue_: bool
    generate: bool
    uses_prompt: bool = False
    native_sr: int | None = None          # None: works at any rate
    max_context_seconds: float | None = None   # audio the engine hands over each side of the span; None: all
    max_output_seconds: float | None = None
    # "hit remove" on a short selection (under `short_selection_seconds`) is honoured: the hit is
    # interpolated away. An engine routes such requests for a backend without it to dsp.
    removes_hits: bool = False
    short_selection_seconds: float = 0.0
    # the per-request option keys (`NAME.KEY` in a request) the backend reads; a request naming any
    # other key for it is refused (a typo would be ignored silently). None: not declared, any passes.
    request_options: frozenset | None = None


class Options(dict):
    """A backend's `--option KEY=VALUE` settings that remember which keys the backend read.

    Backends read their options in their constructor (`x.get("steps", 8)`); `unread()` then names
    the keys none read, so `segue serve` refuses a typo at start instead of ignoring it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)

    def unread(self) -> list:
        return sorted(k for k in self.keys() if k not in self.read)


@dataclass
class BackendConfig:
    model: str | None = None               # folder or Hugging Face repo id
    text_encoder: str | None = None
    device: str | None = None              # "cpu", "cuda", None = best available
    precision: str = "auto"                # "auto" | "fp32" | "bf16" | "fp16"
    extra: dict = field(default_factory=dict)


@dataclass
class Task:
    kind: TaskKind
    sr: int                                # rate of `audio` and of the output
    channels: int
    start_sample: int                      # first output sample, in `audio`'s samples
    frames: int                            # output length in samples, exact
    audio: np.ndarray | None = None        # (channels, n) float32; continue: ends at `start`
    grid: Grid | None = None               # None: no tempo given
    prompt: str = ""
    seed: int = 0
    variations: int = 1
    source_key: str | None = None          # content hash of the source, for caches
    window_start: int = 0                  # where audio[:, 0] lies in the source (samples at sr): the engine
                                           # hands a backend only the window it needs (max_context_seconds)
    # inpaint: the parts of [start_sample, start_sample + frames) to regenerate, as (start_sample, frames)
    # pairs absolute in `audio`; the rest of the span comes back bit-identical. Empty = the whole span.
    regions: list[tuple[int, int]] = field(default_factory=list)
    hit: str = "replace"                   # short selection holding an onset: "replace" the hit or "remove" it
    options: dict = field(default_factory=dict)   # backend-specific request options

    def regen_regions(self) -> list[tuple[int, int]]:
        """The regions to regenerate: `regions`, or the whole output span when none are listed."""
        return list(self.regions) or [(self.start_sample, self.frames)]


def stage_name(stage: str) -> str:
    """A progress stage's name for the per-stage timings: the text before a colon, without step counts
    ("generate 3/8" -> "generate", "grid: 120 BPM 4/4 given" -> "grid", "chunk 2.0/8.0 s" -> "chunk")."""
    name = re.sub(r"\s*[\d.]+/[\d.]+(\s*s\b)?", "", stage.split(":")[0]).strip()
    return name or stage


class JobContext:
    """What a backend may do while it runs: report progress, notice cancellation."""

    def __init__(self, report: Callable[[float, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 deadline: float | None = None, clock: Callable[[], float] | None = None):
        self._report = report or (lambda f, s: None)
        self._cancelled = cancelled or (lambda: False)
        self._deadline = deadline
        self._clock = clock or time.monotonic
        self.notes: list[str] = []
        # seconds spent in each stage, in order ("generate 3/8" counts as "generate"): the engine
        # logs them with every finished request, so a slow request says where its time went
        self.stages: dict[str, float] = {}
        self._stage: str | None = None
        self._since = time.perf_counter()

    def check(self) -> None:
        if self._cancelled():
            raise Cancelled()
        if self._deadline is not None and self._clock() > self._deadline:
            raise TimedOut()

    def progress(self, fraction: float, stage: str) -> None:
        self.check()
        self._mark(stage_name(stage))
        self._report(float(min(max(fraction, 0.0), 1.0)), stage)

    def part(self, lo: float, hi: float) -> "JobContext":
        """A context for one part of the job: its progress fractions 0-1 land in [lo, hi] of this one
        (several regions one after another report a rising fraction); same checks, notes and stages."""
        sub = JobContext(lambda f, st: self.progress(lo + (hi - lo) * f, st), self._cancelled,
                         self._deadline, self._clock)
        sub.notes = self.notes
        sub._mark = lambda stage: None       # the parent's progress() marks the stage
        return sub

    def _mark(self, stage: str | None) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.stages[self._stage] = self.stages.get(self._stage, 0.0) + now - self._since
        self._stage, self._since = stage, now

    def timings(self) -> str:
        """'analyse 0.02 s, encode 0.69 s, generate 2.61 s, ...': the stages so far (closes the last)."""
        self._mark(self._stage)
        return ", ".join(f"{k} {v:.2f} s" for k, v in self.stages.items())

    def step(self, k: int, n: int, lo: float = 0.1, hi: float = 0.9, what: str = "generate") -> None:
        """Progress for step k of n (1-based) mapped into [lo, hi] of the whole job."""
        self.progress(lo + (hi - lo) * k / max(n, 1), f"{what} {k}/{n}")


class Backend(ABC):
    name = "base"

    def __init__(self, config: BackendConfig | None = None):
        self.config = config or BackendConfig()

    def load(self) -> None:
        """Load weights once; called at engine start, before serving."""

    def capabilities(self) -> Capabilities:
        raise NotImplementedError

    def info(self) -> dict:
        """Backend facts for /segue/status and logs: device, dtype, memory."""
        return {"device": "cpu", "dtype": "float32"}

    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        raise SegueError("unsupported", f"backend {self.name} cannot inpaint")

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        raise SegueError("unsupported", f"backend {self.name} cannot continue audio")

    def generate(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        raise SegueError("unsupported", f"backend {self.name} cannot generate from a prompt; "
                         "start the engine with a neural backend (e.g. --backend sao-small)")

    def run(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        fn = {"inpaint": self.inpaint, "continue": self.continue_, "generate": self.generate}[task.kind]
        return fn(task, ctx)
