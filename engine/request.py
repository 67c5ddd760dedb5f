"""The engine's own request type: what a client asks for, in seconds, before any file is read.

The OSC bridge (bridge/protocol.py) builds these from datagrams; Python callers
may build them directly. The engine never sees OSC-shaped objects:

    req = Request(kind="inpaint", id="a1", src="/music/loop.wav", start=4.0, end=6.0, bpm=120.0)
    engine.submit(req, reply)

Times are seconds in the source (inpaint `start`/`end`, continue `at`,
`downbeat`, `regions`); lengths are bars. engine/validate.py turns a Request
plus the decoded source into the sample-exact Task a backend gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from .timeline import Grid

Kind = Literal["inpaint", "continue", "generate"]
KINDS = ("inpaint", "continue", "generate")

# reply(kind, args): kind is "accepted" | "progress" | "done" | "error"; args are the reply's arguments
# as listed in docs/protocol.md (the request id first). The bridge turns them into OSC messages.
Reply = Callable[[str, list], None]


@dataclass
class Request:
    kind: Kind
    id: str
    src: str | None = None                 # absolute path of the source (inpaint, continue)
    start: float | None = None             # inpaint: the span [start, end) in seconds
    end: float | None = None
    at: float | None = None                # continue: seconds in the source where the output starts
    bars: float | None = None              # continue, generate: output length in bars
    bpm: float | None = None               # quarter notes per minute; None: no grid given
    sig: tuple[int, int] = (4, 4)
    downbeat: float = 0.0                  # seconds in the source of any bar line
    seed: int = 0
    variations: int = 1
    out: str | None = None                 # output folder; None: the engine's default
    sr: int | None = None                  # output (project) rate; None: the source's rate
    prompt: str = ""
    timeout: float | None = None           # seconds; capped by the engine's own limit
    backend: str | None = None             # None: the engine's default backend
    regions: list[tuple[float, float]] = field(default_factory=list)   # inpaint: seconds, inside [start, end)
    hit: str = "replace"                   # inpaint of a short selection holding an onset: "replace" | "remove"
    # backend-specific options -> Task.options: "KEY" for any backend, "NAME.KEY" only for backend NAME
    options: dict = field(default_factory=dict)

    @property
    def grid(self) -> Grid | None:
        if self.bpm is None:
            return None
        return Grid(bpm=self.bpm, num=self.sig[0], den=self.sig[1], downbeat=self.downbeat)

    def output_seconds(self) -> float | None:
        """Length of the output in seconds, known without reading any file (None: unknown)."""
        if self.kind == "inpaint" and self.start is not None and self.end is not None:
            return self.end - self.start
        if self.kind in ("continue", "generate") and self.bars is not None and self.bpm is not None:
            return self.grid.bars_seconds(self.bars)
        return None
