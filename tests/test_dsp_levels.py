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
