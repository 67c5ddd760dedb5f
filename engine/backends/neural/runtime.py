"""Device, precision, threads, memory and the safety nets around running a model.

    dev = pick_device("auto")                         # cuda when torch sees one, else cpu
    dit_dtype, vae_dtype = pick_dtypes("auto", dev)   # bf16 where the hardware computes in bf16
    set_threads(opts.get("threads"))
    fn = CompileOrEager(model.dit, enabled=True)      # eager again on ANY compile failure
    outs = run_batched(seeds, lambda chunk: sample(chunk), ctx)   # halves the batch on OOM

`CompileOrEager` exists because torch.compile is lazy: building the wrapper
never fails, the first call does (no C compiler, an unsupported op, a broken
backend), and that call is inside a request. The wrapper catches the failure
at any call, logs it once, switches to the eager module for good and re-runs
the call, so a machine without a working compiler serves at eager speed.
"""

from __future__ import annotations

import importlib
import logging
import os
import resource
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ...errors import SegueError

log = logging.getLogger("segue.neural")

_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16}


# ---------------------------------------------------------------- device and precision

def pick_device(spec: str | None) -> torch.device:
    """"auto"/None -> cuda if available else cpu; else the named device. Raises SegueError("bad_device")."""
    if spec in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError as e:
        raise SegueError("bad_device", f"unknown device {spec!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SegueError("bad_device", f"device {spec} asked but torch sees no CUDA GPU")
    return dev


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes in bf16 natively (AVX512-BF16 or AMX)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return any(f in cpuinfo for f in ("avx512_bf16", "amx_bf16"))


def pick_dtypes(precision: str | None, device: torch.device,
                bf16_cpu: bool | None = None) -> tuple[torch.dtype, torch.dtype]:
    """(transformer dtype, autoencoder dtype) for `precision` in auto | fp32 | bf16 | fp16.

    auto: bf16 on CUDA with bf16 (fp16 on older GPUs) and on CPUs with native
    bf16 math, else fp32. fp16 on the CPU is refused (no fast kernels, and fp16
    cancels badly in differential attention). Raises SegueError("bad_precision").
    """
    p = (precision or "auto").lower()
    if p in _DTYPES:
        dt = _DTYPES[p]
        if dt == torch.float16 and device.type == "cpu":
            raise SegueError("bad_precision", "fp16 is not supported on the CPU; use bf16 or fp32")
        return dt, dt
    if p != "auto":
        raise SegueError("bad_precision", f"precision {precision!r}: use auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return (torch.bfloat16, torch.bfloat16) if torch.cuda.is_bf16_supported() else (torch.float16, torch.float16)
    has = cpu_has_bf16() if bf16_cpu is None else bf16_cpu
    return (torch.bfloat16, torch.bfloat16) if has else (torch.float32, torch.float32)


def dtype_name(dt: torch.dtype) -> str:
    return str(dt).replace("torch.", "")


def set_threads(n: int | str | None) -> int:
    """torch intra-op threads: n, or (None/"auto") leave torch's default. Returns the count in use."""
    if n not in (None, "", "auto"):
        n = int(n)
        if n < 1:
            raise SegueError("bad_option", f"threads={n}: must be at least 1")
        torch.set_num_threads(n)
    return torch.get_num_threads()


# ---------------------------------------------------------------- memory for status

def rss_bytes() -> int:
    """Resident memory of this process now, in bytes (0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def memory_info(device: torch.device | None = None) -> dict:
    """{"rss_bytes", "peak_rss_bytes"[, "cuda_allocated_bytes", "cuda_peak_bytes", "cuda_total_bytes"]}."""
    now = rss_bytes()
    d = {"rss_bytes": now, "peak_rss_bytes": max(now, int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024)}
    if device is not None and device.type == "cuda":
        d["cuda_allocated_bytes"] = int(torch.cuda.memory_allocated(device))
        d["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated(device))
        d["cuda_total_bytes"] = int(torch.cuda.get_device_properties(device).total_memory)
    return d


def weights_bytes(module: torch.nn.Module) -> int:
    return int(sum(t.numel() * t.element_size() for t in module.state_dict().values()))


# ---------------------------------------------------------------- torch.compile with a fallback

def compile_wanted(option, device: torch.device) -> bool:
    """The `compile` option: "auto" compiles on CUDA only (on these CPUs it gained nothing and took ~64 s
    to compile: docs/benchmarks.md); anything else as a switch."""
    return device.type == "cuda" if option == "auto" else bool(option)


def resolve_compile_backend(name: str | None) -> Any:
    """"inductor" (default) or any torch.compile backend name, or "module:function" for a callable."""
    if not name:
        return "inductor"
    if ":" in name:
        mod, fn = name.split(":", 1)
        try:
            return getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise SegueError("bad_option", f"compile_backend={name}: cannot import it ({e})") from e
    return name


class CompileOrEager:
    """Call `module` through torch.compile; on ANY failure of compiling or of a compiled call,
    log once and run eager from then on (re-running the failed call eagerly).

    Out-of-memory is not a compile failure: it propagates (the caller shrinks the batch).
    """

    def __init__(self, module: Callable, enabled: bool = False, backend: str | None = None,
                 dynamic: bool | None = True):
        self.eager = module
        self.compiled: Callable | None = None
        self.failure: str | None = None
        if enabled:
            try:
                self.compiled = torch.compile(module, backend=resolve_compile_backend(backend), dynamic=dynamic)
            except SegueError:
                raise
            except Exception as e:   # eager compile failure (rare: torch.compile is lazy)
                self._give_up(e)

    @property
    def mode(self) -> str:
        return "compiled" if self.compiled is not None else ("eager (compile failed)" if self.failure else "eager")

    def _give_up(self, e: BaseException) -> None:
        self.compiled = None
        self.failure = f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]
        log.warning("torch.compile failed, running eager from now on: %s", self.failure)

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except torch.OutOfMemoryError:
                raise
            except SegueError:
                raise
            except Exception as e:   # the lazy failure at first call (or at a recompile)
                self._give_up(e)
        return self.eager(*args, **kwargs)


# ---------------------------------------------------------------- out of memory: smaller batches

def run_batched(items: Sequence, fn: Callable[[Sequence], Any], device: torch.device | None = None,
                notes: list[str] | None = None) -> list:
    """[fn(chunk) for chunks of `items`], all at once first; on out-of-memory the chunk size halves
    down to 1, then SegueError("out_of_memory"). A note for the reply is appended to `notes`."""
    n = len(items)
    batch = n
    while True:
        try:
            return [fn(items[i:i + batch]) for i in range(0, n, batch)]
        except torch.OutOfMemoryError:
            if device is not None and device.type == "cuda":
                torch.cuda.empty_cache()
            if batch == 1:
                raise SegueError("out_of_memory", "the device ran out of memory even for one variation; "
                                 "ask for a shorter region or run with --precision bf16") from None
            batch = max(1, batch // 2)
            if notes is not None:
                notes.append(f"out of memory with {min(n, batch * 2)} variations at once: "
                             f"made them {batch} at a time")
            log.warning("out of memory: retrying variations %d at a time", batch)
