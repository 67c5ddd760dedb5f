"""Short selections (under ~100 ms): replace the drum hit they hold, or fill them seamlessly.

A short selection is usually one of two intents:

- the selection holds a hit (an onset: the level jumps by HIT_RISE_DB within a few ms) and the user
  wants a *different hit of the same kind*: `replace_hit` takes the best-matching hit from the
  context (its first HIT_SECONDS compared as a log band spectrum), places its onset on the original
  onset (sample-aligned by cross-correlation), matches its energy to the original hit's, and joins
  it to the source with short AR-extrapolated crossfades;
- the selection is a click, a dropout or a hit to get rid of: Janssen AR interpolation
  (`janssen.janssen_fill`) bridges it, and copies of the best-matching same-length stretch of the
  context (`copy_fills`: both edges compared by normalised cross-correlation) give further takes.

Positions are samples in the source (channels, n); the selection is [a, a + L).
"""

from __future__ import annotations

import numpy as np

from .janssen import ar_extrapolate
from ..seams import equal_power
from .takes import distinct

HIT_RISE_DB = 10.0          # an onset: the 2 ms level rises this much over the 20 ms before it
HIT_FLOOR_DB = -20.0        # ... and reaches within this of the loudest 2 ms of the second around
HIT_SECONDS = 0.05          # the part of a hit compared and gain-matched
SEARCH_SECONDS = 15.0       # context searched for donor hits / stretches, each side
EDGE_SECONDS = 0.004        # crossfade at each edge of a short fill
MAX_CANDIDATES = 24


def _envelope(mono: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """(RMS over 2 ms windows every 1 ms, hop in samples); frame f starts at sample f * hop."""
    hop = max(sr // 1000, 1)
    win = 2 * hop
    if len(mono) < win:                      # shorter than one window (a source of a few samples)
        return np.zeros(0), hop
    c = np.concatenate([[0.0], np.cumsum(np.square(mono, dtype=np.float64))])
    starts = np.arange(0, len(mono) - win + 1, hop)
    return np.sqrt((c[starts + win] - c[starts]) / win), hop


def onsets(mono: np.ndarray, sr: int) -> np.ndarray:
    """Onset samples of a 1-D signal. On the first difference (which lifts transients over bass and
    held tones): 1 ms frames whose 2 ms level rises HIT_RISE_DB over the mean of the 20 ms before
    (3 ms back, so the attack's own ramp does not count), within HIT_FLOOR_DB of the loudest frame
    in the surrounding second; the frame of steepest rise within 5 ms; at most one per 30 ms."""
    env, hop = _envelope(np.diff(mono, prepend=mono[:1]), sr)
    if len(env) < 30:
        return np.zeros(0, dtype=np.int64)
    padded = np.concatenate([np.full(23, env[0]), env])
    before = np.lib.stride_tricks.sliding_window_view(padded, 20)[:len(env)].mean(axis=1)   # f-23..f-4
    from scipy.ndimage import maximum_filter1d
    local = maximum_filter1d(env, 1000, mode="nearest")
    ratio = env / (before + 1e-12)
    hit = (ratio > 10 ** (HIT_RISE_DB / 20)) & (env >= local * 10 ** (HIT_FLOOR_DB / 20))
    out, last = [], -10 ** 9
    for f in np.flatnonzero(hit):
        if f - last >= 30:
            # the start of the attack: the first frame of this burst above the pre-onset level by 6 dB
            g = f
            while g > f - 5 and g > 0 and env[g - 1] > 2 * before[f]:
                g -= 1
            out.append(g)
            last = f
    return np.asarray(out, dtype=np.int64) * hop


def hit_in(x: np.ndarray, a: int, L: int, sr: int) -> int | None:
    """The onset sample of a hit inside [a, a + L), or None (judged against 1 s of context)."""
    lo = max(a - sr, 0)
    hi = min(a + L + sr, x.shape[1])
    on = onsets(x[:, lo:hi].mean(axis=0), sr) + lo
    on = on[(on >= a) & (on < a + L - int(0.002 * sr))]
    return int(on[0]) if len(on) else None


def _band_db(seg: np.ndarray, sr: int, bands: int = 24) -> np.ndarray:
    """Log band energies (dB) of a 1-D segment, level removed (the shape of the sound only)."""
    n_fft = 1 << int(np.ceil(np.log2(max(len(seg), 16))))
    p = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n_fft)) ** 2
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(30.0, min(16000.0, sr / 2), bands + 1)
    e = np.array([p[(f >= lo) & (f < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])])
    db = 10 * np.log10(e + 1e-12)
    db = np.maximum(db, db.max() - 60.0)
    return db - db.mean()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _join(y: np.ndarray, x: np.ndarray, a: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Crossfade y (channels, L), which replaces x[:, a:a + L], from/into AR extrapolations of x."""
    L, n = y.shape[1], x.shape[1]
    if fade_in >= 2 and a >= 64:
        fo, fi = equal_power(fade_in)
        lead = ar_extrapolate(x[:, max(a - 4096, 0):a], fade_in)
        y[:, :fade_in] = lead * fo + y[:, :fade_in] * fi
    b = a + L
    if fade_out >= 2 and n - b >= 64:
        fo, fi = equal_power(fade_out)
        tail = ar_extrapolate(x[:, b:b + 4096][:, ::-1], fade_out)[:, ::-1]
        y[:, L - fade_out:] = y[:, L - fade_out:] * fo + tail * fi
    return y


def replace_hit(x: np.ndarray, a: int, L: int, sr: int, t0: int, takes: int) -> list[np.ndarray]:
    """Up to `takes` distinct fills (channels, L) of [a, a + L), each a context hit on onset t0."""
    n = x.shape[1]
    H = int(HIT_SECONDS * sr)
    lead = t0 - a
    lo, hi = max(a - int(SEARCH_SECONDS * sr), 0), min(a + L + int(SEARCH_SECONDS * sr), n)
    on = onsets(x[:, lo:hi].mean(axis=0), sr) + lo
    margin = int(0.03 * sr)
    # A donor's copied span [c - lead, c - lead + L) and its compared hit [c, c + H) must be clear
    # of the selection (and of the original hit's own tail).
    d0 = on - lead
    ok = (d0 >= 0) & (d0 + L <= n) & (on + H <= n)
    ok &= (np.maximum(d0 + L, on + H) + margin <= a) | (d0 - margin >= max(a + L, t0 + H))
    on = on[ok]
    if len(on) == 0:
        return []
    target = x[:, t0:t0 + H].mean(axis=0)
    tshape = _band_db(target, sr)
    cost = np.array([np.mean((_band_db(x[:, c:c + H].mean(axis=0), sr) - tshape) ** 2) for c in on])
    cost += 0.2 * np.abs(on - t0) / max(hi - lo, 1)     # nearer hits first among equals
    order = on[np.argsort(cost)][:MAX_CANDIDATES]
    want = _rms(x[:, t0:t0 + H])
    outs: list[np.ndarray] = []
    fade_in = int(np.clip(lead, 2, int(EDGE_SECONDS * sr)))
    fade_out = min(int(EDGE_SECONDS * sr), max(L - lead - 2, 2))
    for c in order:
        c = _align(x, t0, int(c), sr)
        if c - lead < 0 or c - lead + L > n or c + H > n:
            continue
        g = want / max(_rms(x[:, c:c + H]), 1e-9)
        y = x[:, c - lead:c - lead + L].astype(np.float32) * np.float32(np.clip(g, 0.125, 8.0))
        y = _join(y, x, a, min(fade_in, L // 2), min(fade_out, L // 2))
        if distinct(y, outs):
            outs.append(y)
        if len(outs) >= takes:
            break
    return outs


def _align(x: np.ndarray, t0: int, c: int, sr: int) -> int:
    """The donor onset near c whose first 20 ms best correlate with the original's (within +-2 ms)."""
    w, s = int(0.02 * sr), int(0.002 * sr)
    if c - s < 0 or c + s + w > x.shape[1] or t0 + w > x.shape[1]:
        return c
    ref = x[:, t0:t0 + w].mean(axis=0)
    seg = x[:, c - s:c + s + w].mean(axis=0)
    from scipy.signal import fftconvolve   # lazily: scipy.signal is ~40 MB of modules

    corr = fftconvolve(seg, ref[::-1], mode="valid")      # lags -s..s
    return c - s + int(np.argmax(corr))


def copy_fills(x: np.ndarray, a: int, L: int, sr: int, takes: int, avoid_hits: bool = False) -> list[np.ndarray]:
    """Up to `takes` distinct fills of [a, a + L): copies of the context stretches whose surroundings
    best match the selection's (normalised cross-correlation of 20 ms on each side), gain-matched
    to the edges and joined with AR-extrapolated crossfades."""
    n = x.shape[1]
    W = int(0.02 * sr)
    b = a + L
    if a < W or b + W > n:
        return []
    lo, hi = max(a - int(SEARCH_SECONDS * sr), 0), min(b + int(SEARCH_SECONDS * sr), n)
    mono = x[:, lo:hi].mean(axis=0).astype(np.float64)
    left, right = mono[a - W - lo:a - lo], mono[b - lo:b + W - lo]
    c2 = np.concatenate([[0.0], np.cumsum(mono * mono)])

    from scipy.signal import fftconvolve   # lazily: scipy.signal is ~40 MB of modules

    def ncc(tpl: np.ndarray) -> np.ndarray:
        r = fftconvolve(mono, tpl[::-1], mode="valid")          # r[i] = <mono[i:i+W], tpl>
        e = c2[W:] - c2[:-W]
        return r / np.sqrt(np.maximum(e * float(tpl @ tpl), 1e-18))

    nl, nr = ncc(left), ncc(right)
    ps = np.arange(W, len(mono) - L - W + 1)                      # copy starts (in mono) with both sides
    score = nl[ps - W] + nr[ps + L]
    ps_abs = ps + lo
    clear = (ps_abs + L + W <= a - W) | (ps_abs - W >= b + W)
    ps_abs, score = ps_abs[clear], score[clear]
    if len(ps_abs) == 0:
        return []
    want = _rms(np.concatenate([x[:, a - W:a], x[:, b:b + W]], axis=1))
    fade = min(int(EDGE_SECONDS * sr), L // 2)
    outs: list[np.ndarray] = []
    taken: list[int] = []
    for p in ps_abs[np.argsort(-score)]:
        if any(abs(int(p) - q) < max(L, W) for q in taken):
            continue
        taken.append(int(p))
        if avoid_hits and len(onsets(x[:, p - W:p + L + W].mean(axis=0), sr)):
            continue
        have = _rms(np.concatenate([x[:, p - W:p], x[:, p + L:p + L + W]], axis=1))
        g = np.clip(want / have, 0.25, 4.0) if have > 1e-9 and want > 1e-9 else 1.0
        y = _join(x[:, p:p + L].astype(np.float32) * np.float32(g), x, a, fade, fade)
        if distinct(y, outs):
            outs.append(y)
        if len(outs) >= takes or len(taken) > 8 * takes + 8:
            break
    return outs
