"""Backend registry. Imports are lazy so that `dsp` never pulls in torch."""

from __future__ import annotations

import importlib

from ..errors import SegueError
from .base import Backend, BackendConfig, Capabilities, JobContext, Task

# name -> "module:Class"; neural backends register here as they land.
REGISTRY = {
    "dsp": "segue.engine.backends.dsp:DspBackend",
    "sao-small": "segue.engine.backends.sao_small:SaoSmallBackend",
    "sa3-small": "segue.engine.backends.sa3_small:Sa3SmallBackend",
    "musicgen-small": "segue.engine.backends.musicgen:MusicgenBackend",
}


def create(name: str, config: BackendConfig | None = None) -> Backend:
    if name not in REGISTRY:
        raise SegueError("unknown_backend", f"no backend named {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise SegueError("backend_unavailable",
                         f"backend {name!r} cannot be imported ({e}); from the repository root install the extra: .venv/bin/pip install -e '.[neural]'") from e
    return getattr(mod, cls)(config)


__all__ = ["Backend", "BackendConfig", "Capabilities", "JobContext", "Task", "REGISTRY", "create"]
