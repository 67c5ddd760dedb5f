"""JobContext's per-stage timings: what the engine logs with every finished request."""

import time

from segue.engine.backends.base import JobContext


def test_stage_timings_group_steps_and_keep_order():
    ctx = JobContext()
    ctx.progress(0.0, "encode")
    time.sleep(0.05)
    for k in range(1, 4):
        ctx.step(k, 3)
    ctx.progress(0.9, "decode")
    ctx.progress(0.96, "3 of 4 distinct variations")
    text = ctx.timings()
    assert list(ctx.stages) == ["encode", "generate", "decode", "3 of 4 distinct variations"]
    assert ctx.stages["encode"] >= 0.045
    assert text.startswith("encode 0.0") and "generate" in text and "decode" in text


def test_no_progress_means_no_stages():
    assert JobContext().timings() == ""


def test_a_part_maps_its_progress_into_its_share_and_keeps_the_stages():
    seen = []
    ctx = JobContext(report=lambda f, st: seen.append((round(f, 3), st)))
    ctx.progress(0.1, "region 1/2")
    part = ctx.part(0.1, 0.5)
    part.progress(0.2, "short gap: AR interpolation (Janssen)")
    part.step(1, 1)
    ctx.progress(0.5, "region 2/2")
    ctx.part(0.5, 0.9).progress(0.9, "write")
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[1] == 0.18 and fractions[-1] == 0.86
    assert list(ctx.stages) == ["region", "short gap", "generate"]


def test_a_part_stops_on_cancel():
    import pytest

    from segue.engine.errors import Cancelled

    flag = []
    part = JobContext(cancelled=lambda: bool(flag)).part(0.0, 0.5)
    flag.append(1)
    with pytest.raises(Cancelled):
        part.progress(0.5, "generate 1/2")
