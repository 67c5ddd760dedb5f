"""What the neural backends (sao-small, sa3-small, musicgen-small) share, once.

    hub.py           locate model folders (a path or the Hugging Face cache); never downloads
    window.py        which latent frames to encode and generate around a region (pure functions)
    latent_cache.py  encoded latent frames per (source content, rate), reused by any overlapping edit
    paste.py         model rate in and out, level match, paste the source back, join the edges
    runtime.py       device, precision, threads, memory report, torch.compile with an eager fallback,
                     out-of-memory fallback to smaller batches

Nothing here imports a model; each backend brings its own.
"""

import os as _os

# How torch's OpenMP threads wait at a barrier (libgomp reads this once, when torch loads, so the
# backend packages import this module before torch). Measured on the 2-core bench VM, sa3-small's
# 8 DiT steps (docs/benchmarks.md, "OpenMP barrier waits"):
#   libgomp's default (spin 300,000 rounds, then sleep): quiet 2.6-3.1 s, a busy neighbour 9-11 s
#   OMP_WAIT_POLICY=PASSIVE (sleep at once):              quiet 3.2-3.8 s, busy 5.0-5.3 s
#   spin 1000 rounds (~1 us), then sleep:                  quiet 2.7-2.8 s, busy 5.5-5.9 s
# A short spin keeps the quiet speed (the threads meet again within microseconds) and sleeps
# before a neighbour needs the core. GOMP_SPINCOUNT alone is not enough in the engine: libgomp
# drops to 100 spins once it manages more threads than there are cores, and the engine has a
# team per torch-calling thread (main, worker, prefetch). With OMP_WAIT_POLICY=ACTIVE that
# fallback is 1000 spins too, and GOMP_SPINCOUNT still bounds the spin: ACTIVE here does not
# mean spinning forever. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as set.
OPENMP_ENV = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "1000"}


def _user_chose(env) -> bool:
    return "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env


def openmp_env(environ: dict | None = None) -> dict:
    """`environ` (default os.environ) with the engine's OpenMP wait settings added unless the user set
    any; a new dict. The benches give their reference processes the same."""
    env = dict(_os.environ if environ is None else environ)
    return env if _user_chose(env) else {**env, **OPENMP_ENV}


if not _user_chose(_os.environ):
    _os.environ.update(OPENMP_ENV)
