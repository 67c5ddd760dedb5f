"""neural/window.py: the window arithmetic as pure functions (SAO hop 2048, SA3 hop 4096)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from segue.engine.backends.neural.window import (align_window, context_window, generate_frames, group_regions, keep_mask,
                                           official_canvas_frames, runs, snap, to_model_samples, union, valid_frames)


@pytest.mark.parametrize("hop", [2048, 4096])
def test_snap_covers_the_span_outward(hop):
    assert snap(0, 1, hop) == (0, 1)
    assert snap(hop, 2 * hop, hop) == (1, 2)               # exact edges stay
    assert snap(hop - 1, 2 * hop + 1, hop) == (0, 3)       # partial frames are included
    assert snap(5 * hop, 5 * hop, hop) == (5, 6)           # never empty


def test_to_model_samples_and_union():
    assert to_model_samples(48000, 48000, 44100) == 44100
    assert union([(3, 5), (1, 2), (7, 9)]) == (1, 9)


@settings(max_examples=300, deadline=None)
@given(fa=st.integers(0, 400), n=st.integers(1, 100), known=st.integers(0, 600), cap=st.integers(1, 300),
       ctx=st.integers(0, 80), right=st.booleans())
def test_context_window_properties(fa, n, known, cap, ctx, right):
    fb = fa + n
    wa, wb = context_window(fa, fb, known, cap, ctx, right)
    assert wa <= fa and wb >= fb                              # the region is inside
    assert wa >= 0 and (wb - wa <= max(cap, n))               # never past the cap (a long region is not cut)
    before, after = fa - wa, wb - fb
    assert before <= min(fa, known) and after <= (max(known - fb, 0) if right else 0)   # only known frames
    assert before + after <= 2 * ctx                          # at most the context budget
    # one side's unused share moved to the other: the budget is used when frames allow
    free = max(cap - n, 0)
    avail = min(fa, known) + (max(known - fb, 0) if right else 0)
    assert before + after == min(2 * ctx, free, avail)


def test_context_window_gives_unused_side_to_the_other():
    assert context_window(2, 4, 100, 50, 10) == (0, 22)       # 2 before, so 18 after
    assert context_window(50, 60, 100, 50, 10, right=False) == (30, 60)   # continuation: all before


@settings(max_examples=300, deadline=None)
@given(wa=st.integers(0, 100), n=st.integers(1, 60), align=st.integers(1, 4), lo=st.integers(0, 20))
def test_align_window(wa, n, align, lo):
    wa = max(wa, lo)
    a, b = align_window(wa, wa + n, align, lo=lo)
    assert (b - a) % align == 0 and a <= wa and b >= wa + n and b - a < n + align and a >= min(lo, wa)


def test_align_window_prefers_left_then_right_up_to_hi():
    assert align_window(5, 10, 2) == (4, 10)
    assert align_window(0, 5, 2) == (0, 6)
    assert align_window(1, 10, 4, lo=0, hi=10) == (0, 12)     # shifted left by one, then past hi as a last resort


def test_keep_mask_official_convention():
    # 1 keep, 0 generate; frames past the known audio are generated too
    k = keep_mask(10, 20, [(12, 14), (16, 17)], known=19)
    assert k.dtype == np.float32
    assert k.tolist() == [1, 1, 0, 0, 1, 1, 0, 1, 1, 0]


def test_official_canvas_matches_the_published_examples():
    # models.md: 3 s -> 98 latents, 5 s -> 120 (44.1 kHz, hop 4096, 6 s padding)
    assert official_canvas_frames(3.0, 44100, 4096) == 98
    assert official_canvas_frames(5.0, 44100, 4096) == 120
    assert official_canvas_frames(500.0, 44100, 4096, max_samples=5292032) == 5292032 // 4096
    assert official_canvas_frames(7.3, 44100, 4096) % 2 == 0


def test_generate_frames_even_and_minimal():
    assert generate_frames(2.0, 44100, 4096) == 22            # ceil(21.5) = 22, even
    assert generate_frames(1.0, 44100, 4096) == 12            # ceil(10.8) = 11 -> 12
    assert generate_frames(1000.0, 44100, 4096, cap=1292) == 1292
    assert valid_frames(5.0, 44100, 4096) == 54


def test_runs_and_groups():
    assert runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert runs([]) == [] and runs([1, 1]) == [(0, 2)]
    assert group_regions([(50, 60), (0, 5), (8, 10)], cap=20) == [[(0, 5), (8, 10)], [(50, 60)]]
    assert group_regions([(0, 30)], cap=20) == [[(0, 30)]]    # a long region is a group of its own
