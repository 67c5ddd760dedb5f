"""neural/latent_cache.py: slices equal a whole encode, any overlapping edit reuses frames, prefetch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segue.engine.backends.neural.latent_cache import LatentCache  # noqa: E402

HOP = 64


def toy_encoder(margin_taps: int = 2):
    """A deterministic 'encoder' with a receptive field of `margin_taps` frames each side."""
    def encode(audio):
        x = audio.mean(1, keepdim=True)                            # (1, 1, S)
        frames = x.reshape(1, 1, -1, HOP).mean(-1)                  # (1, 1, T)
        k = torch.ones(1, 1, 2 * margin_taps + 1) / (2 * margin_taps + 1)
        z = torch.nn.functional.conv1d(frames, k, padding=margin_taps)
        return torch.cat([z, z * 2, -z], dim=1)                    # (1, 3, T)
    return encode


def counted_cache(seed: int, key: str):
    """-> (cache over the toy encoder, its source of 100 frames of noise, the whole-file latents, the
    list of encoder call lengths in frames, the audio)."""
    enc = toy_encoder()
    calls = []
    cache = LatentCache(lambda a: (calls.append(a.shape[-1] // HOP), enc(a))[1], HOP, 3, margin=2, model_sr=48000)
    audio = np.random.default_rng(seed).standard_normal((2, 100 * HOP)).astype(np.float32)
    src = cache.source(key, audio, 48000)
    return cache, src, enc(torch.from_numpy(src.audio[None]))[0], calls, audio


def test_slices_equal_whole_and_overlap_encodes_only_the_difference():
    cache, src, whole, calls, audio = counted_cache(0, "file")
    z = cache.frames(src, 40, 50)
    torch.testing.assert_close(z, whole[:, 40:50])
    assert cache.encoded_frames == 10
    z2 = cache.frames(src, 45, 60)                                 # an overlapping new window
    torch.testing.assert_close(z2, whole[:, 45:60])
    assert cache.encoded_frames == 20                              # only frames 50..59 were new
    assert cache.source("file", audio, 48000) is src               # same content and rate: same entry
    assert cache.source("file", audio, 44100) is not src           # another rate: another entry
    cache.frames(src, 45, 60)
    assert cache.encoded_frames == 20


def test_align_and_bounds():
    enc = toy_encoder()
    seen = []
    cache = LatentCache(lambda a: enc(a), HOP, 3, margin=2, model_sr=48000, align=4)
    orig = cache._encode_run
    cache._encode_run = lambda s, a, b, **k: (seen.append((a, b)), orig(s, a, b, **k))[1]
    src = cache.source(None, np.ones((1, 30 * HOP), np.float32), 48000)
    assert src.audio.shape == (2, 30 * HOP)                        # mono duplicated
    cache.frames(src, 25, 40)                                      # clipped to the file
    assert src.have[25:30].all() and not src.have[:25].any()


def test_prefetch_fills_the_file_and_stops_on_request():
    cache = LatentCache(toy_encoder(), HOP, 3, margin=2, model_sr=48000)
    src = cache.source("f", np.ones((2, 200 * HOP), np.float32), 48000)
    n = cache.prefetch(src, chunk=16, should_stop=lambda: cache.encoded_frames >= 32, order_from=100)
    assert n == 32 and src.have[92:124].all() and not src.have[:92].any()   # nearest first
    cache.prefetch(src, chunk=16)
    assert bool(src.have.all())


def test_bounded_in_bytes():
    cache = LatentCache(toy_encoder(), HOP, 3, margin=2, model_sr=48000, max_bytes=3 * (2 * 100 * HOP * 4))
    for k in range(6):
        cache.source(f"f{k}", np.ones((2, 100 * HOP), np.float32), 48000)
    assert len(cache.store) <= 3 and cache.store.current_bytes <= cache.store.max_bytes


def test_prefetch_fills_the_gap_between_edits_first():
    from segue.engine.backends.neural.latent_cache import prefetch_order

    have = np.zeros(100, bool)
    have[10:20] = have[40:50] = True                    # two earlier edits' windows
    assert prefetch_order(have, order_from=45) == (39, False)   # the gap 20-39 before 50 (also 1 away)
    have[30:40] = True
    assert prefetch_order(have, 45) == (29, False)      # still the gap: 20 and 29 tie, 29 nearer the edit
    have[20:30] = True
    assert prefetch_order(have, 45) == (50, True)       # no gap left: outward, nearest the last edit
    assert prefetch_order(np.ones(5, bool), 0) is None


def test_prefetch_gap_order_end_to_end():
    cache = LatentCache(toy_encoder(), HOP, 3, margin=2, model_sr=48000)
    src = cache.source("g", np.ones((2, 200 * HOP), np.float32), 48000)
    cache.frames(src, 40, 60)
    cache.frames(src, 100, 120)
    n = cache.prefetch(src, chunk=20, should_stop=lambda: cache.encoded_frames >= 80, order_from=110)
    assert n == 40 and src.have[40:120].all() and not src.have[:40].any() and not src.have[120:].any()


def test_prefetch_leaves_edited_regions_for_last():
    from segue.engine.backends.neural.latent_cache import prefetch_order

    have = np.zeros(100, bool)
    have[10:20] = have[24:30] = have[40:50] = True      # edit 1's canvas 10-30 with its region 20-24 not encoded
    later = np.zeros(100, bool)
    later[20:24] = True
    assert prefetch_order(have, 45) == (39, False)      # without the mark the hole 20-23 would come first
    assert prefetch_order(have, 45, later)[0] in (30, 39)
    have[30:40] = True
    assert prefetch_order(have, 45, later) == (50, True)  # outward before the edited hole
    have[50:] = True
    have[:10] = True
    assert prefetch_order(have, 45, later)[0] in range(20, 24)


def test_mark_edited_reaches_prefetch():
    cache = LatentCache(toy_encoder(), HOP, 3, margin=2, model_sr=48000)
    src = cache.source("e", np.ones((2, 100 * HOP), np.float32), 48000)
    cache.frames(src, 10, 20)
    cache.frames(src, 24, 30)
    cache.mark_edited(src, 20, 24)
    cache.prefetch(src, chunk=10, should_stop=lambda: cache.encoded_frames >= 26, order_from=22)
    assert not src.have[20:24].any() and src.have[30:40].all()


def test_window_encodes_close_runs_as_one_and_equals_a_whole_encode():
    """A short region (a drum hit) between two kept runs: one encoder pass covers both sides and the
    hit's frames (fewer encoder frames than two passes with a margin each side), same latents."""
    enc = toy_encoder()
    passes = []
    cache = LatentCache(lambda a: (passes.append(a.shape[-1] // HOP), enc(a))[1], HOP, 3, margin=2,
                        model_sr=48000)
    audio = np.random.default_rng(1).standard_normal((2, 100 * HOP)).astype(np.float32)
    src = cache.source("file", audio, 48000)
    whole = enc(torch.from_numpy(src.audio[None]))[0]
    keep = np.ones(30, np.float32)
    keep[14:17] = 0                                # 3 generated frames: gap 3 < 2 margins -> one pass
    z = cache.window(src, 40, keep, None)
    assert len(passes) == 1 and passes[0] == 30 + 4
    torch.testing.assert_close(z[:, keep > 0], whole[:, 40:70][:, keep > 0])
    assert (z[:, keep == 0] == 0).all()            # the generated frames stay zero in the canvas
    passes.clear()
    keep2 = np.ones(30, np.float32)
    keep2[5:15] = 0                                # 10 generated frames: two passes are cheaper
    z2 = cache.window(src, 0, keep2, None)
    assert len(passes) == 2
    torch.testing.assert_close(z2[:, keep2 > 0], whole[:, 0:30][:, keep2 > 0])


def test_merge_runs():
    from segue.engine.backends.neural.window import merge_runs

    assert merge_runs([(0, 5), (8, 10), (30, 31)], 4) == [(0, 10), (30, 31)]
    assert merge_runs([(0, 5), (9, 10)], 4) == [(0, 5), (9, 10)]
    assert merge_runs([], 4) == []


def test_open_edges_encode_no_margin_outside_the_canvas_and_cache_only_exact_frames():
    cache, src, whole, lengths, audio = counted_cache(1, "open")
    keep = np.ones(20, np.float32)
    keep[8:11] = 0                                                   # a region in the middle of canvas 40-60
    z = cache.window(src, 40, keep, open_edges=True)
    assert lengths == [20]                                           # one run, no audio outside the canvas
    torch.testing.assert_close(z[:, 2:8], whole[:, 42:48])           # a margin in from the edges: exact
    torch.testing.assert_close(z[:, 11:18], whole[:, 51:58])
    assert not torch.allclose(z[:, :2], whole[:, 40:42])             # the edge frames: as a window encode
    assert src.have[42:58].all() and not src.have[40:42].any() and not src.have[58:60].any()
    torch.testing.assert_close(cache.window(src, 40, keep, open_edges=True), z)   # a re-roll of that canvas:
    assert lengths == [20]                                                         # nothing encoded
    z2 = cache.window(src, 36, np.ones(8, np.float32))               # later, 40-41 inside a canvas: exact
    torch.testing.assert_close(z2, whole[:, 36:44])
    assert src.have[36:44].all()
    s = cache.source("edge", audio, 48000)                           # the file's own edge is exact
    cache.window(s, 0, np.ones(10, np.float32), open_edges=True)
    assert s.have[:8].all() and not s.have[8:10].any()
