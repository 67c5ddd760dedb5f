"""engine.cache.ByteCache: bounded by bytes, least recently used goes first."""

import numpy as np

from segue.engine.cache import ByteCache, nbytes


def test_evicts_least_recently_used_by_bytes():
    c = ByteCache(3000)
    for k in "abc":
        c.put(k, np.zeros(100, np.float64))       # 800 bytes each
    assert c.get("a") is not None                  # a is now the most recent
    c.put("d", np.zeros(100, np.float64))          # 3200 > 3000: b goes
    assert "b" not in c and "a" in c and "d" in c
    assert c.current_bytes <= 3000


def test_value_larger_than_budget_is_returned_not_kept():
    c = ByteCache(100)
    made = []
    v = c.get_or_make("big", lambda: made.append(1) or np.zeros(1000))
    assert v.shape == (1000,) and "big" not in c and len(c) == 0
    c.get_or_make("big", lambda: made.append(1) or np.zeros(1000))
    assert len(made) == 2


def test_get_or_make_computes_once():
    c = ByteCache(1 << 20)
    calls = []
    for _ in range(3):
        c.get_or_make(("k", 1), lambda: calls.append(1) or np.ones(10))
    assert len(calls) == 1


def test_nbytes_of_containers():
    a = np.zeros((2, 50), np.float32)
    assert nbytes(a) == 400
    assert nbytes((a, a)) >= 800
    assert nbytes({"x": a}) >= 400
