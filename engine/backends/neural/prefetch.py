"""Encode the rest of the last edited file while the engine is idle (one helper for every latent backend).

    prefetch = IdlePrefetcher(cache, chunk=16, delay=1.0, name="sa3-prefetch")
    prefetch.start()
    with prefetch.request(task, frames_of) as src:   # a running prefetch stops at its next chunk; the
        ...                                          # request holds cache.lock while it encodes and samples
    # on exit: an inpaint's file is prefetched from its region on, once idle for `delay`

    (`request` is `begin()` ... `end(src, at_frame, edited)` around the cached source.)

Why a delay: a re-roll is usually sent right after a reply; an encode chunk started in between
would make it wait. Why the edited frames: `LatentCache.prefetch` fills the gaps between edits
first and the edited regions' own frames last (the next edit is rarely the same region).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

from .latent_cache import LatentCache, SourceLatents


class IdlePrefetcher:
    """A daemon thread that prefetches latent frames of the last edited source while no request runs."""

    def __init__(self, cache: LatentCache, chunk: int, delay: float = 1.0, name: str = "prefetch",
                 enabled: bool = True):
        self.cache, self.chunk, self.delay, self.name, self.enabled = cache, int(chunk), float(delay), name, enabled
        self._cond = threading.Condition()
        self._busy = 0
        self._todo: tuple[SourceLatents, int] | None = None
        self._closed = False

    def start(self) -> None:
        if self.enabled:
            threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def begin(self) -> None:
        """A request starts: any prefetch stops at its next chunk (or in its grace delay)."""
        with self._cond:
            self._busy += 1
            self._cond.notify_all()

    def end(self, src: SourceLatents | None = None, at_frame: int = 0,
            edited: list[tuple[int, int]] = ()) -> None:
        """A request ended. With `src`: prefetch it from latent frame `at_frame` once idle; `edited`
        lists the latent frame ranges [fa, fb) of the regions it regenerated."""
        with self._cond:
            self._busy -= 1
            if src is not None and self.enabled:
                self._todo = (src, at_frame)
                for fa, fb in edited:
                    self.cache.mark_edited(src, fa, fb)
            self._cond.notify_all()

    @contextlib.contextmanager
    def request(self, task, frames_of: Callable[[object, int, int], tuple[int, int]]) -> Iterator[SourceLatents | None]:
        """Serve one request: yields the cached source of `task` (None for generate) with the cache
        locked; afterwards an inpaint's file is queued for prefetch from its first region, its
        regenerated regions (latent frames from frames_of(task, start_sample, frames)) marked edited."""
        self.begin()
        src = None
        try:
            with self.cache.lock:       # a running prefetch chunk finishes first; then the request has the CPU
                if task.kind != "generate":
                    src = self.cache.source(task.source_key, task.audio, task.sr)
                yield src
        finally:
            if src is not None and task.source_key and task.kind == "inpaint":
                at = int(task.start_sample * self.cache.model_sr / task.sr) // self.cache.hop
                self.end(src, at, [frames_of(task, a, n) for a, n in task.regen_regions()])
            else:
                self.end()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._busy or self._todo is None):
                    self._cond.wait()
                if self._closed:
                    return
                if self._cond.wait_for(lambda: self._busy or self._closed, timeout=self.delay):
                    continue                    # a request came: it leaves a newer todo
                (src, at), self._todo = self._todo, None
            try:
                self.cache.prefetch(src, chunk=self.chunk, should_stop=lambda: self._busy > 0 or self._closed,
                                    order_from=at)
            except Exception:   # prefetch is an optimisation: never let it take the engine down
                pass
