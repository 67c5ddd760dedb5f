"""The level rules of a copied donor run (engine/dsp/exemplar.py _run_gain): "surround" takes the ratio of
the region's 1 s surroundings to the donor's whatever they hold; "material" only when both hold the same
kind of sound, so a quieter part around the donor is not mistaken for a quieter mix."""

from __future__ import annotations

import numpy as np
import pytest

from segue.engine.dsp import exemplar

SR = 22050


def chord(seconds: float, level: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.0, 330.0, 2640.0)) + 0.05 * rng.standard_normal(len(t))
    return level * y / 4.0


def hiss(seconds: float, level: float, rng) -> np.ndarray:
    y = np.diff(rng.standard_normal(int(seconds * SR) + 1))    # tilted up: a different spectral shape
    return level * y / np.sqrt(np.mean(y ** 2)) * 0.35


def layout(donor_sides):
    """[chord 2 s][region 1 s][chord 2 s][gap 1 s][donor sides 1 s][donor 1 s][donor sides 1 s][chord 1 s];
    returns x, a, b, d (d = region start - donor start)."""
    rng = np.random.default_rng(3)
    parts = [chord(2, 0.5, rng), np.zeros(SR), chord(2, 0.5, rng), chord(1, 0.5, rng),
             donor_sides(rng), chord(1, 0.5, rng), donor_sides(rng), chord(1, 0.5, rng)]
    x = np.concatenate(parts)[None].astype(np.float32)
    a, b = 2 * SR, 3 * SR
    donor = 7 * SR
    return np.vstack([x, x]), a, b, a - donor


@pytest.mark.parametrize("rule", ["surround", "material"])
def test_same_material_quieter_around_the_donor_is_a_gain(rule, monkeypatch):
    monkeypatch.setattr(exemplar, "GAIN_RULE", rule)
    x, a, b, d = layout(lambda rng: chord(1, 0.25, rng))      # the same chord, 6 dB down
    g = exemplar._run_gain(x, a, b, d, SR, False)
    assert 20 * np.log10(g) == pytest.approx(6.0, abs=0.3)


def test_other_material_around_the_donor_keeps_its_level(monkeypatch):
    monkeypatch.setattr(exemplar, "GAIN_RULE", "surround")
    x, a, b, d = layout(lambda rng: hiss(1, 0.1, rng))
    assert abs(20 * np.log10(exemplar._run_gain(x, a, b, d, SR, False))) > 3.0   # surround takes it as a gain
    monkeypatch.setattr(exemplar, "GAIN_RULE", "material")
    assert exemplar._run_gain(x, a, b, d, SR, False) == 1.0


# ---------------------------------------------------------------- a region inside a decay

def song_with_an_ending(sr: int = SR):
    """12 s of groove at 120 BPM, then a last hit at 12 s ringing out at -30 dB/s over a -90 dB floor."""
    from conftest import groove
    rng = np.random.default_rng(5)
    x = np.zeros((2, 16 * sr), np.float32)
    x[:, :12 * sr] = groove(12.0, sr, seed=2)
    t = np.arange(4 * sr) / sr
    ring = 0.4 * np.exp(-t * 3.45) * (np.sin(2 * np.pi * 196.0 * t) + 0.5 * rng.standard_normal(len(t)))
    x[:, 12 * sr:] += ring.astype(np.float32) + np.float32(3e-5) * rng.standard_normal((2, len(t))).astype(np.float32)
    return x


def test_a_fill_inside_the_last_hit_rings_out_at_its_level():
    from segue.engine.backends.base import JobContext, Task
    from segue.engine.backends.dsp import DspBackend
    from segue.engine.timeline import Grid
    x = song_with_an_ending()
    a, L = int(12.5 * SR), SR // 2
    src = x.copy()
    src[:, a:a + L] = 0.0
    backend = DspBackend()
    backend.load()
    task = Task(kind="inpaint", sr=SR, channels=2, start_sample=a, frames=L, audio=src, grid=Grid(120.0, 4, 4, 0.0),
                seed=0, variations=1)
    y = backend.inpaint(task, JobContext())[0]
    level = lambda v: 10 * np.log10(np.mean(np.square(v, dtype=np.float64)))
    # donors are groove (15-25 dB louder) or the ring further down (15-25 dB quieter): the decay line
    # through the region puts the fill within 3 dB
    assert abs(level(y) - level(x[:, a:a + L])) < 3.0


def test_the_decay_rule_leaves_music_alone():
    x = song_with_an_ending()
    loud = np.ones((2, SR // 2), np.float32)             # any take: only a decay changes its level
    for a in (int(4.25 * SR), int(11.5 * SR)):           # mid-groove; ending on the last hit's onset
        assert exemplar._decay_gain(x, a, a + SR // 2, SR, loud) == 1.0
    assert exemplar._decay_gain(x, int(12.5 * SR), 13 * SR, SR, loud) < 0.2
