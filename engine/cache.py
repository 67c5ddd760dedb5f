"""One cache helper for every cache in the engine: least recently used, bounded in bytes.

    audio = ByteCache(256 << 20)                  # at most 256 MiB of values
    y = audio.get_or_make(key, lambda: decode())   # computed once per key

Built on cachetools' LRUCache (a well-kept library) with the size of each value
measured by `nbytes` (numpy arrays, torch tensors, tuples/lists/dicts and
dataclasses of them). A value larger than the whole budget is returned but not
kept. Thread-safe: the OSC thread may read while the worker writes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any, Callable, Hashable

from cachetools import LRUCache


def nbytes(value: Any) -> int:
    """Approximate memory held by `value` in bytes (arrays by their buffers, containers summed)."""
    n = getattr(value, "nbytes", None)
    if isinstance(n, int):
        return n
    if hasattr(value, "element_size") and hasattr(value, "numel"):   # torch.Tensor
        return int(value.element_size() * value.numel())
    if isinstance(value, (tuple, list, set, frozenset)):
        return sum(nbytes(v) for v in value) + 8 * len(value)
    if isinstance(value, dict):
        return sum(nbytes(k) + nbytes(v) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


class ByteCache:
    """A thread-safe LRU cache holding at most `max_bytes` of values (sizes from `nbytes`)."""

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int] = nbytes):
        self.max_bytes = int(max_bytes)
        self._lru = LRUCache(maxsize=max(self.max_bytes, 1), getsizeof=lambda v: max(int(sizeof(v)), 1))
        self._lock = threading.Lock()

    def get(self, key: Hashable, default=None):
        with self._lock:
            return self._lru.get(key, default)

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            try:
                self._lru[key] = value
            except ValueError:   # larger than the whole budget: not kept
                self._lru.pop(key, None)

    def get_or_make(self, key: Hashable, make: Callable[[], Any]):
        """The cached value for `key`, else `make()` (called outside the lock), stored and returned."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = make()
            self.put(key, value)
        return value

    def pop(self, key: Hashable, default=None):
        with self._lock:
            return self._lru.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()

    def keys(self) -> list:
        with self._lock:
            return list(self._lru.keys())

    @property
    def current_bytes(self) -> int:
        with self._lock:
            return int(self._lru.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._lru


_MISSING = object()
