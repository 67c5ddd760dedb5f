"""MusicGen small (`musicgen-small`): autoregressive continuation and generation through
transformers' MusicgenForConditionalGeneration.

Modules: plan (token and prompt arithmetic), prefill (generate() without the duplicate prefill,
static cache, progress), loading (strict folder / HF cache loading), backend.
"""

from .. import neural  # noqa: F401  (sets the OpenMP wait before torch loads)


def __getattr__(name):
    if name == "MusicgenBackend":  # lazy: importing plan should not load torch and transformers
        from .backend import MusicgenBackend

        return MusicgenBackend
    raise AttributeError(name)


__all__ = ["MusicgenBackend"]
