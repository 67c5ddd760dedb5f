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
