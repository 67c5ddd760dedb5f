"""The official canvas arithmetic of the SA3 generate path, as pure functions (engine/backends/sa3_small/canvas.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings, strategies as st  # noqa: E402

from segue.engine.backends.sa3_small import canvas as cv  # noqa: E402

SR = 44100


@pytest.mark.parametrize("seconds, frames", [(3.0, 98), (5.0, 120), (10.0, 174), (0.5, 70)])
def test_canvas_latent_counts(seconds, frames):
    """(seconds + 6 s) rounded up to whole 8192-sample chunks: 3 s -> 98, 5 s -> 120 latent frames."""
    samples = cv.canvas_samples(seconds)
    assert samples % 8192 == 0 and cv.latent_count(samples) == frames


def test_canvas_is_capped_at_the_model_maximum():
    assert cv.canvas_samples(120.0) == 5292032 and cv.latent_count(5292032) == 1292


@given(st.floats(min_value=0.01, max_value=200.0, allow_nan=False))
@settings(max_examples=200, deadline=None)
def test_canvas_is_even_and_holds_the_padded_duration(seconds):
    samples = cv.canvas_samples(seconds)
    assert cv.latent_count(samples) % 2 == 0
    assert samples >= min(int((seconds + 6.0) * SR), 5292032)
    assert samples - int((seconds + 6.0) * SR) < 8192 or samples == 5292032


def test_canvas_rejects_nonpositive_durations():
    with pytest.raises(ValueError):
        cv.canvas_samples(0.0)


def test_valid_latents_and_padding_mask():
    # ceil(220500 / 4096) = 54 real frames + int(6 * 44100 / 4096) = 64 frames of headroom
    assert cv.valid_latents(5.0, 120) == 118
    assert cv.valid_latents(100.0, 1000) == 1000                     # capped at the canvas
    keep = cv.padding_mask(5.0, 120, batch=2)
    assert keep.shape == (2, 120) and keep.dtype == torch.bool and int(keep[0].sum()) == 118 and not keep[1, 118:].any()
    assert cv.effective_latents(5.0) == 54


def _official_latent_mask(regions_s, seconds_total, frames):
    """The official construction: a per-sample mask, zero past seconds_total, nearest-downsampled."""
    n = frames * 4096
    m = torch.ones(1, n)
    for a, b in regions_s:
        m[:, min(int(a * SR), n):min(int(b * SR), n)] = 0
    m[:, int(seconds_total * SR):] = 0
    return torch.nn.functional.interpolate(m[:, None], size=frames, mode="nearest")[0, 0]


@given(st.lists(st.tuples(st.floats(0, 12), st.floats(0, 12)).map(sorted), min_size=1, max_size=3),
       st.floats(1.0, 10.0))
@settings(max_examples=60, deadline=None)
def test_latent_mask_follows_the_official_nearest_rule(regions, seconds_total):
    frames = cv.latent_count(cv.canvas_samples(seconds_total))
    ours = cv.latent_mask(cv.seconds_regions(regions), frames, end_sample=cv.seconds_to_samples(seconds_total))
    assert torch.equal(ours, _official_latent_mask(regions, seconds_total, frames))


def test_latent_mask_frame_rule_by_hand():
    # frame i is generated iff start <= i * 4096 < end
    m = cv.latent_mask([(4096, 3 * 4096 + 1), (10 * 4096 - 1, 10 * 4096)], 12)
    assert m.tolist() == [1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    m = cv.latent_mask([], 6, end_sample=4 * 4096 - 5)
    assert m.tolist() == [1, 1, 1, 1, 0, 0]


def test_seconds_conversions_truncate():
    assert cv.seconds_to_samples(0.1) == 4410 and cv.seconds_regions([(1.00001, 2.5)]) == [(44100, 110250)]


def test_fit_to_canvas_crops_and_pads_at_the_end():
    a = torch.arange(10.0).reshape(1, 10)
    assert cv.fit_to_canvas(a, 4).tolist() == [[0, 1, 2, 3]]
    assert cv.fit_to_canvas(a, 12)[0, 10:].tolist() == [0, 0] and torch.equal(cv.fit_to_canvas(a, 12)[:, :10], a)
