"""The job queue and the one worker thread that owns the backends.

The OSC side calls `submit`, `cancel` and `status` from its receive thread;
only the worker touches the backends, so a backend never needs to be
thread-safe. Every accepted job ends in exactly one `done` or `error` reply.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from .audio_io import SourceReader, probe
from .backends.base import Backend, JobContext
from .errors import SegueError
from .paths import OutputRoots
from .pipeline import check_region, render

log = logging.getLogger("segue.jobs")

Reply = Callable[[str, list], None]   # reply(address, args) to the requester


@dataclass
class Job:
    request: object                     # bridge.protocol.Request
    reply: Reply
    backend: Backend
    timeout: float
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return self.request.id


class Engine:
    def __init__(self, backend: Backend, roots: OutputRoots, queue_size: int = 16,
                 timeout: float = 300.0, fallback: Backend | None = None):
        self.backend = backend
        # dsp is always available beside a neural backend (it needs no weights).
        self.backends = {backend.name: backend}
        if fallback is not None and fallback.name not in self.backends:
            self.backends[fallback.name] = fallback
        self.roots = roots
        self.reader = SourceReader()
        self.queue_size = queue_size
        self.timeout = timeout
        self._queue: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="segue-worker", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            for job in self._queue:
                job.cancelled.set()
            if self._running:
                self._running.cancelled.set()
            self._cond.notify_all()
        self._worker.join(timeout=5)

    # -- called from the OSC thread -------------------------------------------------

    def submit(self, req, reply: Reply) -> None:
        """Validate what is cheap to validate, then queue. Raises SegueError to refuse."""
        name = req.opt("backend", self.backend.name)
        backend = self.backends.get(name)
        if backend is None:
            raise SegueError("backend_unavailable", f"backend {name!r} is not loaded; this engine runs "
                             f"{', '.join(self.backends)} (start it with segue serve --backend {name})")
        caps = backend.capabilities()
        able = {"inpaint": caps.inpaint, "continue": caps.continue_, "generate": caps.generate}[req.kind]
        if not able:
            hint = " (a neural backend such as sao-small can)" if req.kind == "generate" else ""
            raise SegueError("unsupported", f"backend {name} cannot {req.kind}{hint}")
        if req.src is not None:
            seconds, _ = probe(req.src)
            check_region(req, seconds)
        self.roots.resolve(req.opt("out"))
        timeout = min(self.timeout, req.opt("timeout", self.timeout))
        with self._cond:
            if self._stop:
                raise SegueError("busy", "engine is shutting down")
            if any(j.id == req.id for j in self._queue) or (self._running and self._running.id == req.id):
                raise SegueError("duplicate_id", f"a request with id {req.id!r} is already queued or running")
            if len(self._queue) >= self.queue_size:
                raise SegueError("busy", f"queue is full ({self.queue_size} waiting); try again later")
            job = Job(req, reply, backend, timeout)
            position = len(self._queue) + (1 if self._running else 0)
            reply("/segue/accepted", [req.id, position])
            self._queue.append(job)
            self._cond.notify()

    def cancel(self, request_id: str) -> bool:
        with self._cond:
            for job in self._queue:
                if job.id == request_id:
                    self._queue.remove(job)
                    job.reply("/segue/error", [job.id, "cancelled", "cancelled while queued"])
                    return True
            if self._running and self._running.id == request_id:
                self._running.cancelled.set()  # the backend stops at its next step
                return True
        return False

    def status(self) -> dict:
        with self._cond:
            return {
                "state": "busy" if self._running or self._queue else "idle",
                "backend": self.backend.name,
                "queued": len(self._queue),
                "running": self._running.id if self._running else "",
            }

    # -- the worker ---------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job = self._queue.popleft()
                self._running = job
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running = None

    def _run(self, job: Job) -> None:
        req = job.request
        t0 = time.monotonic()

        def report(fraction: float, stage: str) -> None:
            job.reply("/segue/progress", [req.id, fraction, stage])

        ctx = JobContext(report=report, cancelled=job.cancelled.is_set, deadline=t0 + job.timeout)
        try:
            result = render(req, job.backend, self.reader, self.roots, ctx)
        except SegueError as e:  # cancelled and timed-out requests too
            log.info("%s %s failed: %s", req.kind, req.id, e)
            job.reply("/segue/error", [req.id, e.code, e.message])
        except MemoryError:
            log.error("%s %s ran out of memory", req.kind, req.id)
            job.reply("/segue/error", [req.id, "out_of_memory", "the engine ran out of memory for this request"])
        except Exception as e:  # a bug: say so, keep serving
            log.error("%s %s crashed:\n%s", req.kind, req.id, traceback.format_exc())
            job.reply("/segue/error", [req.id, "internal", f"{type(e).__name__}: {e}"])
        else:
            dt = time.monotonic() - t0
            log.info("%s %s done in %.3f s -> %s", req.kind, req.id, dt, result.paths[0])
            job.reply("/segue/done", [req.id, str(result.paths[0]), result.seconds, result.sr]
                      + [str(p) for p in result.paths[1:]])
