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

# OpenMP threads that spin at barriers collapse when another process holds a core: on this
# 2-core machine one DiT step went from 0.61 s to 11 s with a busy neighbour (bench notes in
# docs/benchmarks.md). Sleeping waits cost nothing measurable here. libgomp reads this once,
# when torch loads, so the backend packages import this module before torch.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
