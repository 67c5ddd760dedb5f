"""Stable Audio Open Small (`sao-small`): native PyTorch DiT + Oobleck VAE + T5 conditioning.

Modules: config (model_config.json), dit, oobleck (VAE), conditioners (T5 +
seconds), sampler (ping-pong), loading (strict checkpoint loading), backend.
"""

from .. import neural  # noqa: F401,E402  (sets the OpenMP wait before torch loads)


def __getattr__(name):
    if name == "SaoSmallBackend":  # lazy: importing a submodule should not build the backend
        from .backend import SaoSmallBackend

        return SaoSmallBackend
    raise AttributeError(name)


__all__ = ["SaoSmallBackend"]
