"""Encode the rest of the last edited file while the engine is idle (one helper for every latent backend).

    prefetch = IdlePrefetcher(cache, chunk=16, delay=1.0, name="sa3-prefetch")
    prefetch.start()
    prefetch.begin()                       # a request starts: a running prefetch stops at its next chunk
    ...                                    # the request holds cache.lock while it encodes and samples
    prefetch.end(src, at_frame, edited)    # the request ended: prefetch `src` from `at_frame` after `delay`

Why a delay: a re-roll is usually sent right after a reply; an encode chunk started in between
would make it wait. Why the edited frames: `LatentCache.prefetch` fills the gaps between edits
first and the edited regions' own frames last (the next edit is rarely the same region).
"""

from __future__ import annotations

import threading

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
