"""engine/seams.py: the edge join every backend uses."""

import numpy as np

from segue.engine.seams import join_source

SR = 44100


def test_region_ending_before_a_hard_onset_puts_no_burst_in_front_of_it():
    """A selection up to the next drum hit: the backward extrapolation of the hit was faded in at full
    level (0.21 RMS where the truth had 0.002). Now the fade stays near the fill's level."""
    rng = np.random.default_rng(0)
    n, a, L, fade = SR, 20000, 8820, 882
    audio = (rng.standard_normal((1, n)) * 0.002).astype(np.float32)
    end = a + L
    t = np.arange(n - end) / SR
    audio[:, end:] += (0.5 * np.sin(2 * np.pi * 180 * t) * np.exp(-t * 30)).astype(np.float32)   # the hit
    fill = (rng.standard_normal((1, L)) * 0.002).astype(np.float32)
    y = join_source(fill.copy(), audio, a, fade)
    rms = float(np.sqrt(np.mean(y[:, L - fade:] ** 2)))
    assert rms < 0.006, rms


def test_a_join_into_continuous_audio_is_untouched_and_click_free():
    """Level-matched audio around the region: the extrapolation is used as before (no cap), and the
    edges continue the waveform (no sample-to-sample jump beyond the signal's own)."""
    n, a, L, fade = SR, 20000, 8820, 882
    t = np.arange(n) / SR
    audio = (0.5 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32)
    fill = (0.5 * np.sin(2 * np.pi * 220 * t[a:a + L] + 1.0))[None].astype(np.float32)   # other phase
    y = join_source(fill.copy(), audio, a, fade)
    out = audio.copy()
    out[:, a:a + L] = y
    step = np.abs(np.diff(out[0, a - 10:a + L + 10])).max()
    assert step < 2 * np.abs(np.diff(audio[0])).max(), step
