"""`Engine`: the request queue and the one worker thread that owns the backends.

    engine = Engine({"dsp": dsp, "sao-small": sao}, OutputRoots())
    engine.start()
    engine.submit(request, reply)     # O(1): refuses or queues; raises SegueError to refuse
    engine.cancel(id); engine.result(id); engine.describe()
    engine.stop()                     # every queued and running request gets its final error

The receive thread calls submit, cancel, result and describe; none of them
touches a file or a backend, so a slow disk or a busy model never stalls ping,
status or cancel. Only the worker runs backends, so a backend never needs to
be thread-safe. Every accepted request ends in exactly one final reply (done
or error): `_finish` is the only way out and sends at most once per job, and
the worker survives any exception, including one raised while replying.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field

from . import __version__
from .audio_io import SourceReader
from .backends.base import Backend, JobContext
from .cache import ByteCache
from .errors import SegueError
from .paths import OutputRoots, SourceDirs
from .pipeline import Limits, render
from .request import KINDS, Reply, Request
from .validate import DEFAULT_MAX_OUTPUT_SECONDS, check_output_length

log = logging.getLogger("segue.engine")

SHUTDOWN = "engine shutting down"
RESULT_BYTES = 1 << 20          # recent final replies kept for /segue/result (a few thousand)
RESULT_SECONDS = 3600.0         # ... and for at most this long


@dataclass
class Job:
    request: Request
    reply: Reply
    backend: Backend
    backend_name: str              # the engine's name for it (its key in Engine.backends)
    timeout: float
    cancelled: threading.Event = field(default_factory=threading.Event)
    reason: str = ""               # why it was cancelled, for the error message
    finished: bool = False         # its final reply is sent (guarded by Engine._cond)

    @property
    def id(self) -> str:
        return self.request.id

    def cancel(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.cancelled.set()


def _safe_info(backend: Backend) -> dict:
    try:
        return dict(backend.info())
    except Exception as e:  # a backend's report must never break status
        return {"error": f"{type(e).__name__}: {e}"}


class Engine:
    def __init__(self, backends: dict[str, Backend], roots: OutputRoots, *, default: str | None = None,
                 failed: dict[str, str] | None = None, queue_size: int = 16, timeout: float = 300.0,
                 max_source_seconds: float = 3600.0, source_dirs: SourceDirs | None = None,
                 reader: SourceReader | None = None):
        if not backends:
            raise ValueError("Engine needs at least one backend")
        self.backends = dict(backends)
        self.default = default or next(iter(self.backends))
        self.failed = dict(failed or {})          # name -> why it did not load
        self.roots = roots
        self.reader = reader or SourceReader()
        self.queue_size = queue_size
        self.timeout = timeout
        self.limits = Limits(max_source_seconds=max_source_seconds, source_dirs=source_dirs)
        # Backend facts for status, refreshed by the worker after each job: the receive thread never
        # calls into a backend.
        self._info = {name: _safe_info(b) for name, b in self.backends.items()}
        self._caps = {name: b.capabilities() for name, b in self.backends.items()}
        # backends that honour "hit remove" on a short selection: the pipeline hands such a request to
        # one when the asked backend would only generate another hit
        self._removers = {n: b for n, b in self.backends.items() if self._caps[n].removes_hits}
        self._results = ByteCache(RESULT_BYTES)
        self._queue: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="segue-worker", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self, reason: str = SHUTDOWN, wait: float = 10.0) -> None:
        """Refuse new requests; every queued and the running request get `error id cancelled reason`.

        Waits up to `wait` seconds for the running job to stop at its next check; a backend
        stuck longer gets its error sent for it (its late result is then dropped).
        """
        with self._cond:
            self._stop = True
            queued = list(self._queue)
            self._queue.clear()
            running = self._running
            if running is not None:
                running.cancel(reason)
            self._cond.notify_all()
        for job in queued:
            self._finish(job, "error", [job.id, "cancelled", reason])
        if self._worker.is_alive():
            self._worker.join(timeout=wait)
        if running is not None:
            self._finish(running, "error", [running.id, "cancelled", reason])

    # -- called from the receive thread: O(1), no files, no backends ------------------

    def submit(self, req: Request, reply: Reply) -> None:
        """Check what needs no file, then queue. Raises SegueError to refuse (nothing is sent then)."""
        if req.kind not in KINDS:
            raise SegueError("bad_request", f"unknown request kind {req.kind!r}")
        name = req.backend or self.default
        backend = self.backends.get(name)
        if backend is None:
            if name in self.failed:
                raise SegueError("backend_unavailable", f"backend {name} failed to load: {self.failed[name]}")
            raise SegueError("backend_unavailable", f"backend {name!r} is not loaded; this engine runs "
                             f"{', '.join(self.backends)} (start it with segue serve --backend {name})")
        caps = self._caps[name]
        able = {"inpaint": caps.inpaint, "continue": caps.continue_, "generate": caps.generate}[req.kind]
        if not able:
            able_here = [n for n, c in self._caps.items() if getattr(c, {"continue": "continue_"}.get(req.kind, req.kind))]
            if able_here:   # another loaded backend can: name it
                hint = f" (this engine's {', '.join(able_here)} can: pass backend {able_here[0]})"
            elif req.kind == "generate":
                hint = " (a neural backend such as sa3-small or sao-small can"
                hint += (f"; {', '.join(self.failed)} failed to load: see segue status)" if self.failed else ")")
            else:
                hint = ""
            raise SegueError("unsupported", f"backend {name} cannot {req.kind}{hint}")
        check_output_length(req, name, caps)
        timeout = min(self.timeout, req.timeout or self.timeout)
        with self._cond:
            if self._stop:
                raise SegueError("busy", SHUTDOWN)
            if any(j.id == req.id for j in self._queue) or (self._running and self._running.id == req.id):
                raise SegueError("duplicate_id", f"a request with id {req.id!r} is already queued or running")
            if len(self._queue) >= self.queue_size:
                raise SegueError("busy", f"queue is full ({self.queue_size} waiting); try again later")
            job = Job(req, reply, backend, name, timeout)
            position = len(self._queue) + (1 if self._running else 0)
            self._results.pop(req.id)          # an id reused: its old result is no longer the answer
            self._send(job, "accepted", [req.id, position])
            self._queue.append(job)
            self._cond.notify()

    def cancel(self, request_id: str) -> bool:
        with self._cond:
            for job in self._queue:
                if job.id == request_id:
                    self._queue.remove(job)
                    break
            else:
                if self._running and self._running.id == request_id:
                    self._running.cancel("cancelled")   # the backend stops at its next check
                    return True
                return False
        self._finish(job, "error", [job.id, "cancelled", "cancelled while queued"])
        return True

    def result(self, request_id: str) -> tuple[str, list] | None:
        """The final reply (kind, args) of a recently finished request; ("accepted", [id, position])
        while it is still queued or running; None when the engine knows no such id."""
        with self._cond:
            jobs = ([self._running] if self._running else []) + list(self._queue)
            for position, job in enumerate(jobs):
                if job.id == request_id and not job.finished:
                    return "accepted", [request_id, position]
        got = self._results.get(request_id)
        if got is None or time.monotonic() - got[0] > RESULT_SECONDS:
            return None
        return got[1], list(got[2])

    def describe(self) -> dict:
        """State, queue and backends, from what the engine already knows (no backend is called)."""
        with self._cond:
            state = "busy" if self._running or self._queue else "idle"
            queued = len(self._queue)
            running = self._running.id if self._running else ""
        return {
            "version": __version__,
            "state": state,
            "backend": self.default,
            "queued": queued,
            "running": running,
            "backends": {name: dict(info) for name, info in self._info.items()},
            "failed": dict(self.failed),
            "max_output_seconds": {name: c.max_output_seconds or DEFAULT_MAX_OUTPUT_SECONDS
                                   for name, c in self._caps.items()},
            "max_source_seconds": self.limits.max_source_seconds,
        }

    # -- replies ----------------------------------------------------------------------

    def _send(self, job: Job, kind: str, args: list) -> None:
        try:
            job.reply(kind, args)
        except Exception:  # a reply that cannot be sent must not take the worker with it
            log.exception("reply %s for %s could not be sent", kind, job.id)

    def _finish(self, job: Job, kind: str, args: list) -> None:
        """Send the job's one final reply (done or error); later calls for the same job do nothing."""
        with self._cond:
            if job.finished:
                return
            job.finished = True
            if self._running is job:   # status after a done must already say idle
                self._running = None
            self._results.put(job.id, (time.monotonic(), kind, tuple(args)))
        self._send(job, kind, args)

    # -- the worker ---------------------------------------------------------------------

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
            except BaseException:  # nothing may end the worker; _run already replied where it could
                log.exception("worker: unexpected failure around %s", job.id)
                self._finish(job, "error", [job.id, "internal", "the engine failed while finishing this request"])
            finally:
                with self._cond:
                    self._running = None
                self._info[job.backend_name] = _safe_info(job.backend)

    def _run(self, job: Job) -> None:
        req = job.request
        t0 = time.monotonic()

        def report(fraction: float, stage: str) -> None:
            if not job.finished:
                self._send(job, "progress", [req.id, fraction, stage])

        ctx = JobContext(report=report, cancelled=job.cancelled.is_set, deadline=t0 + job.timeout)
        try:
            try:
                result = render(req, job.backend, self.reader, self.roots, ctx, self.limits, job.backend_name,
                                removers=self._removers)
            finally:   # before the final reply: a status asked right after `done` sees this job's effects
                self._info[job.backend_name] = _safe_info(job.backend)
        except SegueError as e:  # cancelled and timed-out requests too
            message = job.reason if e.code == "cancelled" and job.reason and job.reason != "cancelled" else e.message
            log.info("%s %s failed: %s %s", req.kind, req.id, e.code, message)
            self._finish(job, "error", [req.id, e.code, message])
        except MemoryError:
            log.error("%s %s ran out of memory", req.kind, req.id)
            self._finish(job, "error", [req.id, "out_of_memory", "the engine ran out of memory for this request"])
        except Exception as e:  # a bug: say so, keep serving
            log.error("%s %s crashed:\n%s", req.kind, req.id, traceback.format_exc())
            self._finish(job, "error", [req.id, "internal", f"{type(e).__name__}: {e}"])
        else:
            log.info("%s %s done in %.3f s -> %s (%s)", req.kind, req.id, time.monotonic() - t0, result.paths[0],
                     ctx.timings())
            self._finish(job, "done", [req.id, str(result.paths[0]), result.seconds, result.sr]
                         + [str(p) for p in result.paths[1:]])
