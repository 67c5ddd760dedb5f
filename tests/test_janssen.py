"""Janssen AR gap interpolation and AR extrapolation: accuracy against the truth, edge cases, arguments."""

import numpy as np
import pytest

from segue.engine.dsp.janssen import LEVINSON_MAX_GAP, ar_extrapolate, default_order, janssen_fill

SR = 48000


def snr_db(truth: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(truth ** 2) / max(np.sum((truth - est) ** 2), 1e-30)))


def harmonic(f0: float, seconds: float = 1.0, partials: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    return sum((0.5 / k) * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
               for k in range(1, partials + 1))


def rendered_tone(seed: int = 0) -> np.ndarray:
    """A plucked-string-like note: decaying inharmonic partials with vibrato, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    f0 = 196.0 * (1 + 0.003 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.exp(-t * (1.5 + 0.4 * k)) / k * np.sin(k * np.sqrt(1 + 1e-4 * k * k) * phase + rng.uniform(0, 6))
            for k in range(1, 12))
    return x + 0.003 * rng.standard_normal(len(t))


def linear_fill(x: np.ndarray, s: int, g: int) -> np.ndarray:
    return np.linspace(x[..., s - 1], x[..., s + g], g + 2, axis=-1)[..., 1:-1]


@pytest.mark.parametrize("ms", [10, 20, 40])
@pytest.mark.parametrize("make", [lambda: harmonic(220.0), lambda: harmonic(110.0, partials=12, seed=3),
                                  rendered_tone], ids=["harm220", "harm110", "tone"])
def test_gap_snr_high_on_harmonic_signals(ms, make):
    x = make()
    g = int(SR * ms / 1000)
    for s in (SR // 3 + 17, SR // 2 + 901):
        truth = x[s:s + g].copy()
        damaged = x.copy()
        damaged[s:s + g] = 0.0        # the fill must not read the truth
        y = janssen_fill(damaged[None], s, g)[0]
        got = snr_db(truth, y)
        assert got > 20.0, f"{ms} ms gap at {s}: SNR {got:.1f} dB"
        # far above the trivial fills (zero fill is 0 dB by definition)
        assert got > snr_db(truth, linear_fill(x, s, g)) + 15.0


def test_levinson_and_pcg_paths_agree():
    x = harmonic(220.0) + 0.01 * np.random.default_rng(1).standard_normal(SR)
    s = SR // 2
    g = LEVINSON_MAX_GAP + 200              # PCG path
    y_pcg = janssen_fill(x, s, g)[0]
    import segue.engine.dsp.janssen as J
    old = J.LEVINSON_MAX_GAP
    J.LEVINSON_MAX_GAP = 10 ** 9
    try:
        y_lev = janssen_fill(x, s, g)[0]
    finally:
        J.LEVINSON_MAX_GAP = old
    assert snr_db(y_lev, y_pcg) > 40.0
    assert snr_db(x[s:s + g], y_pcg) > 20.0


def test_stereo_channels_filled_independently():
    left, right = harmonic(220.0, seed=1), harmonic(330.0, seed=2)
    x = np.stack([left, right]).astype(np.float32)
    s, g = 20000, 960
    y = janssen_fill(x, s, g)
    assert y.shape == (2, g) and y.dtype == np.float32
    assert snr_db(left[s:s + g], y[0]) > 20.0
    assert snr_db(right[s:s + g], y[1]) > 20.0
    # swapping the channels swaps the result
    y2 = janssen_fill(x[::-1].copy(), s, g)
    np.testing.assert_allclose(y2[::-1], y, atol=1e-5)


def test_mono_1d_input_and_integer_like_arguments():
    x = harmonic(220.0)
    y = janssen_fill(x, np.int64(1000), 100.0)
    assert y.shape == (1, 100) and y.dtype == np.float32


def test_gap_content_is_ignored():
    x = harmonic(220.0)
    s, g = 15000, 480
    a = x.copy(); a[s:s + g] = 0
    b = x.copy(); b[s:s + g] = 1e3 * np.random.default_rng(0).standard_normal(g)
    np.testing.assert_array_equal(janssen_fill(a, s, g), janssen_fill(b, s, g))


@pytest.mark.parametrize("where", ["start", "end"])
def test_one_sided_gap_at_file_edges(where):
    x = harmonic(220.0, seconds=0.5)
    g = 480                                   # 10 ms
    s = 0 if where == "start" else len(x) - g
    y = janssen_fill(x, s, g)[0]
    got = snr_db(x[s:s + g], y)
    assert got > 15.0, f"{where}: {got:.1f} dB"
    assert np.all(np.isfinite(y))


def test_short_context_on_one_side_lowers_order():
    x = harmonic(220.0, seconds=0.5)
    g = 480
    s = 40                                    # only 40 known samples before the gap
    y = janssen_fill(x, s, g)[0]
    assert snr_db(x[s:s + g], y) > 10.0
    # joins the short side: first filled sample close to its neighbour's continuation
    assert abs(y[0] - x[s]) < 0.1 * np.max(np.abs(x))


def test_silence_gives_silence_and_noise_stays_bounded():
    z = np.zeros((2, 5000))
    assert np.all(janssen_fill(z, 2000, 300) == 0)
    n = np.random.default_rng(0).standard_normal((1, 20000))
    y = janssen_fill(n, 10000, 2000)
    assert np.all(np.isfinite(y))
    assert np.sqrt(np.mean(y ** 2)) < 1.5 * np.sqrt(np.mean(n ** 2))


def test_long_gap_uses_pcg_and_stays_finite():
    x = rendered_tone(2)
    g = SR // 4                               # 250 ms
    y = janssen_fill(x, SR // 2, g, iterations=1)[0]
    assert np.all(np.isfinite(y))
    assert snr_db(x[SR // 2: SR // 2 + g], y) > 3.0


def test_default_order():
    assert default_order(1) == 8
    assert default_order(20) == 62
    assert default_order(10 ** 6) == 512


@pytest.mark.parametrize("kwargs, msg", [
    (dict(start=-1, length=10), "outside"),
    (dict(start=900, length=200), "outside"),
    (dict(start=10, length=0), "positive"),
    (dict(start=10, length=-5), "positive"),
    (dict(start=10, length=10, order=0), "order"),
    (dict(start=10, length=10, iterations=0), "iterations"),
    (dict(start=1.5, length=10), "integer"),
    (dict(start="3", length=10), "integer"),
    (dict(start=10, length=True), "integer"),
])
def test_bad_arguments(kwargs, msg):
    x = harmonic(220.0, seconds=1000 / SR)
    with pytest.raises(ValueError, match=msg):
        janssen_fill(x, **kwargs)


def test_bad_arrays():
    with pytest.raises(ValueError, match="shape"):
        janssen_fill(np.zeros((2, 3, 100)), 10, 10)
    with pytest.raises(ValueError, match="dtype"):
        janssen_fill(np.array(["a"] * 100), 10, 10)
    with pytest.raises(ValueError, match="no context"):
        janssen_fill(np.zeros((1, 100)), 0, 100)
    bad = harmonic(220.0, seconds=0.1)
    bad[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        janssen_fill(bad, 500, 100)


def test_ar_extrapolate_continues_a_tone():
    x = np.stack([harmonic(220.0), harmonic(440.0, seed=5)])
    n = 30000
    y = ar_extrapolate(x[:, :n], 240, order=64)
    assert y.shape == (2, 240) and y.dtype == np.float32
    for ch in range(2):
        assert snr_db(x[ch, n:n + 240], y[ch]) > 20.0
    # backward prediction by reversing
    yb = ar_extrapolate(x[:, n:][:, ::-1], 240, order=64)[:, ::-1]
    for ch in range(2):
        assert snr_db(x[ch, n - 240:n], yb[ch]) > 20.0


def test_ar_extrapolate_arguments():
    with pytest.raises(ValueError, match="count"):
        ar_extrapolate(np.zeros((1, 100)), -1)
    with pytest.raises(ValueError, match="order"):
        ar_extrapolate(np.zeros((1, 100)), 5, order=0)
    with pytest.raises(ValueError, match="2 samples"):
        ar_extrapolate(np.zeros((1, 1)), 5)
    assert ar_extrapolate(np.zeros((2, 100)), 0).shape == (2, 0)
    assert np.all(ar_extrapolate(np.zeros((1, 100)), 10) == 0)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(n=st.integers(16, 3000), ch=st.integers(1, 3), data=st.data(), seed=st.integers(0, 2 ** 31 - 1),
       scale=st.sampled_from([0.0, 1e-6, 1.0, 1e4]))
def test_any_valid_gap_gives_finite_output_of_the_right_shape(n, ch, data, seed, scale):
    """Anywhere in any signal (noise, silence, tiny or huge levels; gaps at the edges, with
    short context on one side, longer than the context): no crash, finite, bounded."""
    x = scale * np.random.default_rng(seed).standard_normal((ch, n))
    length = data.draw(st.integers(1, n - 8))
    start = data.draw(st.integers(0, n - length))
    if start < 8 and n - start - length < 8:
        with pytest.raises(ValueError, match="no context"):
            janssen_fill(x, start, length)
        return
    y = janssen_fill(x, start, length)
    assert y.shape == (ch, length) and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    # AR fills of noise do not blow up (extrapolation decays, interpolation is a least-squares fit)
    assert np.max(np.abs(y)) <= 20 * max(scale, 1e-30) * 6
