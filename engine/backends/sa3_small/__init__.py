"""Stable Audio 3 small (`sa3-small`): native PyTorch DiT + SAME-S + T5Gemma conditioning.

Modules: config (model_config.json), dit, same (autoencoder), conditioner (T5Gemma +
seconds), sampler (LogSNRShift ping-pong), canvas (the official canvas arithmetic),
model (the parts together), loading (strict checkpoint loading), backend (serving).
"""

from .. import neural  # noqa: F401,E402  (sets the OpenMP wait before torch loads)


def __getattr__(name):
    if name == "Sa3SmallBackend":  # lazy: importing a submodule should not build the backend
        from .backend import Sa3SmallBackend

        return Sa3SmallBackend
    raise AttributeError(name)


__all__ = ["Sa3SmallBackend"]
