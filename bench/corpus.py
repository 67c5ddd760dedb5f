"""Build the quality-benchmark corpus under bench/corpus/ (git-ignored; nothing here is committed).

    .venv/bin/python bench/corpus.py [--out bench/corpus] [--force]

Sources (Debian packages, installed with apt-get when missing; see
/work/shared/reference/corpus.md). Each item is a WAV plus its grid when known:

- loop-tiled: multi-bar sonic-pi / lmms loops tiled to ~25 s. The loops are
  4 or 2 bars long, so the bar before a masked bar is a *different* bar (the
  repeat-previous-bar baseline is not handed the answer). BPM derived from the
  exact loop length and its beat count (listed below by ear/name; 16 beats for
  the 4-bar loops).
- loop-arrangement: 16-24 bars sequenced from several one-/two-bar loops that
  share a tempo (sonic-pi's 97 BPM family, lmms+sonic-pi 120 BPM family), with
  a layer that changes every few bars: the same material recurs, but not bar
  after bar.
- midi: drums + bass + chords written with mido on an exact grid (87.5 BPM 4/4,
  7/8, 6/8, 3/4, 120 BPM 4/4 at 22.05 kHz mono), with per-bar variation (4-bar
  chord progressions, bass rhythm variants, ghost notes, fills every 4th bar,
  crashes per phrase), rendered by fluidsynth with FluidR3_GM (MIT).
- hydrogen: hydrogen-data demo songs rendered headless by h2cli (exact 4/4 grid;
  GM_kit_demo1 has slight humanised timing).
- track: 30 s segments of singularity-music tracks (CC BY-SA 3.0); grid
  estimated by this script (onset-envelope autocorrelation), marked "estimated".

Licenses: sonic-pi-samples (mostly CC0/MIT, CC-BY-SA-4 for a few), lmms-common
(GPL-2+), hydrogen-data (GPL-2+), fluid-soundfont-gm (MIT), singularity-music
(CC BY-SA 3.0). The corpus is only read by the benchmark and never committed
or shipped.

Writes bench/corpus/manifest.json: a list of items
{name, type, path, sr, channels, seconds, grid: {bpm, num, den, downbeat} | null,
 grid_source: "derived" | "exact" | "estimated", source, license}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent
SONIC = Path("/usr/share/sonic-pi/samples")
LMMS = Path("/usr/share/lmms/samples")
H2SONGS = Path("/usr/share/hydrogen/data/demo_songs")
SINGULARITY = Path("/usr/share/games/singularity/music")
FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
APT = ["sonic-pi-samples", "lmms-common", "hydrogen", "hydrogen-data", "fluidsynth",
       "fluid-soundfont-gm", "singularity-music"]


# ---------------------------------------------------------------- helpers

def ensure_packages() -> None:
    missing = [p for p in APT if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    print(f"apt-get install {' '.join(missing)}", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True, env=env)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    from pedalboard.io import AudioFile
    with AudioFile(str(path)) as f:
        return f.read(f.frames).astype(np.float32), int(f.samplerate)


def to_rate(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    g = np.gcd(sr, target)
    return resample_poly(x, target // g, sr // g, axis=1).astype(np.float32)


def to_channels(x: np.ndarray, ch: int) -> np.ndarray:
    if x.shape[0] == ch:
        return x
    if ch == 1:
        return x.mean(axis=0, keepdims=True)
    return np.repeat(x[:1], ch, axis=0)


def write(path: Path, x: np.ndarray, sr: int) -> None:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.98:                       # keep headroom; the bench compares relative spectra
        x = x * (0.98 / peak)
    wavfile.write(path, sr, np.ascontiguousarray(x.T.astype(np.float32)))


def grid(bpm: float, num: int = 4, den: int = 4, downbeat: float = 0.0) -> dict:
    return {"bpm": float(bpm), "num": num, "den": den, "downbeat": float(downbeat)}


# ---------------------------------------------------------------- loops

# (file, beats in the loop): beat counts from the loop lengths at the tempi their names
# or docs give (compus ~148, drone_g_97 at 97, amen_full 140), all whole bars.
TILED = [
    ("sonic:loop_amen_full", 16), ("sonic:loop_compus", 16), ("sonic:loop_garzul", 16),
    ("sonic:loop_mika", 16), ("lmms:beats/909beat01", 8), ("lmms:bassloops/tb303_01", 8),
    ("lmms:bassloops/techno_synth04", 16),
]


def load_src(spec: str) -> tuple[np.ndarray, int, Path]:
    """'sonic:loop_amen' or 'lmms:beats/909beat01' -> (audio, sr, path)."""
    where, name = spec.split(":")
    path = SONIC / f"{name}.flac" if where == "sonic" else LMMS / f"{name}.ogg"
    x, sr = read_audio(path)
    return x, sr, path


def tiled_items(out: Path, target_seconds: float = 25.0) -> list[dict]:
    items = []
    for spec, beats in TILED:
        x, sr, path = load_src(spec)
        n = x.shape[1]
        bpm = beats * 60.0 * sr / n
        reps = max(2, int(np.ceil(target_seconds * sr / n)))
        y = np.tile(x, (1, reps))
        name = "tiled_" + spec.split("/")[-1].split(":")[-1]
        p = out / f"{name}.wav"
        write(p, y, sr)
        items.append(dict(name=name, type="loop-tiled", path=str(p), sr=sr, channels=y.shape[0],
                          seconds=y.shape[1] / sr, grid=grid(bpm), grid_source="derived",
                          source=str(path), license="sonic-pi-samples / lmms-common (see copyright)"))
    return items


# families of loops sharing a tempo: (spec, bars)
FAMILIES = {
    "arr97": dict(sr=44100, ch=2, parts=[("sonic:loop_mehackit1", 1), ("sonic:loop_mehackit2", 1),
                                         ("sonic:loop_perc1", 1), ("sonic:loop_perc2", 1),
                                         ("sonic:loop_electric", 1)],
                  layers=[("sonic:loop_drone_g_97", 2), ("sonic:loop_weirdo", 2)], bars=20, seed=97),
    "arr120": dict(sr=44100, ch=2, parts=[("lmms:beats/electro_beat02", 1), ("lmms:beats/electro_beat01", 2),
                                          ("sonic:loop_garzul", 4)],
                   layers=[("sonic:loop_mika", 4), ("sonic:loop_safari", 4)], bars=16, seed=120),
}


def arrangement_items(out: Path) -> list[dict]:
    items = []
    for name, fam in FAMILIES.items():
        sr, ch, rng = fam["sr"], fam["ch"], np.random.default_rng(fam["seed"])
        def load(spec):
            x, xsr, _ = load_src(spec)
            return to_channels(to_rate(x, xsr, sr), ch)
        parts = [(load(s), b) for s, b in fam["parts"]]
        layers = [(load(s), b) for s, b in fam["layers"]]
        bar = min(p.shape[1] // b for p, b in parts)            # samples per bar (all equal up to rounding)
        bpm = 4 * 60.0 * sr / bar
        total = fam["bars"] * bar
        y = np.zeros((ch, total), np.float32)
        k, prev = 0, -1
        while k < fam["bars"]:                                  # drums: a new part most bars, never 3 alike
            i = int(rng.integers(len(parts)))
            if i == prev and rng.random() < 0.7:
                i = (i + 1) % len(parts)
            p, b = parts[i]
            b = min(b, fam["bars"] - k)
            y[:, k * bar:(k + b) * bar] += p[:, :b * bar]
            k, prev = k + b, i
        k = 0
        while k < fam["bars"]:                                  # layer: on for 2-4 bars, off for 1-2
            on = int(rng.integers(2, 5))
            lay, lb = layers[int(rng.integers(len(layers)))]
            for j in range(min(on, fam["bars"] - k)):
                seg = lay[:, (j % lb) * bar:(j % lb + 1) * bar]
                y[:, (k + j) * bar:(k + j) * bar + seg.shape[1]] += 0.6 * seg
            k += on + int(rng.integers(1, 3))
        p = out / f"{name}.wav"
        write(p, y, sr)
        items.append(dict(name=name, type="loop-arrangement", path=str(p), sr=sr, channels=ch,
                          seconds=total / sr, grid=grid(bpm), grid_source="derived",
                          source=", ".join(s for s, _ in fam["parts"] + fam["layers"]),
                          license="sonic-pi-samples / lmms-common (see copyright)"))
    return items


# ---------------------------------------------------------------- MIDI grooves

GROOVES = [
    # name, bpm, num, den, groups (units), sr, channels, programs (bass, chords), key root, seed
    ("midi_87p5_4-4", 87.5, 4, 4, [1, 1, 1, 1], 48000, 2, (33, 4), 45, 1),
    ("midi_140_7-8", 140.0, 7, 8, [2, 2, 3], 44100, 2, (34, 0), 50, 2),
    ("midi_100_6-8", 100.0, 6, 8, [3, 3], 48000, 2, (32, 24), 43, 3),
    ("midi_150_3-4", 150.0, 3, 4, [1, 1, 1], 96000, 2, (38, 16), 48, 4),
    ("midi_120_4-4_22k_mono", 120.0, 4, 4, [1, 1, 1, 1], 22050, 1, (33, 48), 40, 5),
]
PROGRESSIONS = [[0, 8, 3, 10], [0, 5, 7, 5], [0, 3, 8, 7], [0, 10, 8, 7]]   # semitones from the key root


def groove_midi(bpm, num, den, groups, programs, root, seed, bars):
    try:
        import mido
    except ImportError:
        sys.exit("bench/corpus.py needs mido for the MIDI grooves: .venv/bin/pip install mido")
    rng = np.random.default_rng(seed)
    tpq = 480
    unit = tpq * 4 // den
    bar_t = unit * num
    sub = unit // 2 if den == 4 else unit // 2                     # hat step: 8ths in x/4, 16ths in x/8
    events = []                                                    # (tick, channel, note, vel, dur)
    prog = PROGRESSIONS[seed % len(PROGRESSIONS)]
    group_starts = np.cumsum([0] + groups[:-1])
    bass_variant = [int(rng.integers(3)) for _ in range(4)]
    for b in range(bars):
        t0 = b * bar_t
        fill = b % 4 == 3
        chord_root = root + prog[b % 4]
        # drums (channel 9)
        if b % 8 == 0:
            events.append((t0, 9, 49, 100, unit))                 # crash per phrase
        for gi, g in enumerate(group_starts):
            t = t0 + int(g) * unit
            if gi == 0 or (gi % 2 == 0 and rng.random() < 0.8) or rng.random() < 0.15:
                events.append((t, 9, 36, int(rng.integers(95, 120)), unit // 2))
            if gi % 2 == 1 and not (fill and gi == len(groups) - 1):
                events.append((t, 9, 38, int(rng.integers(90, 115)), unit // 2))
        hat_open = rng.random() < 0.4
        for s in range(bar_t // sub):
            t = t0 + s * sub
            if fill and t >= t0 + bar_t - 2 * unit:
                if s % 1 == 0:
                    events.append((t, 9, [50, 47, 45, 43][s % 4], int(rng.integers(80, 110)), sub))
                continue
            if s == bar_t // sub - 1 and hat_open:
                events.append((t, 9, 46, 85, sub))
            elif rng.random() < 0.92:
                events.append((t, 9, 42, int(rng.integers(50, 90)) + (20 if s % 2 == 0 else 0), sub // 2))
            if rng.random() < 0.08:
                events.append((t, 9, 38, 35, sub // 2))           # ghost snare
        # bass (channel 0)
        var = bass_variant[b % 4] if rng.random() < 0.8 else int(rng.integers(3))
        steps = {0: [int(g) * unit for g in group_starts],
                 1: list(range(0, bar_t, unit)),
                 2: [int(g) * unit for g in group_starts] + [bar_t - sub]}[var]
        steps = sorted(set(steps))
        for i, st in enumerate(steps):
            nxt = steps[i + 1] if i + 1 < len(steps) else bar_t
            note = chord_root - 12 + (12 if (var == 1 and i % 4 == 3) else 0) + (7 if rng.random() < 0.15 else 0)
            events.append((t0 + st, 0, note, int(rng.integers(85, 110)), max(nxt - st - 20, 40)))
        # chords (channel 1): minor/major triad, inversion varies per bar; hits on group starts
        third = 3 if prog[b % 4] in (0, 5, 7) else 4
        voicing = [0, third, 7]
        for _ in range(int(rng.integers(3))):
            voicing = voicing[1:] + [voicing[0] + 12]
        hits = [int(g) * unit for g in group_starts] if rng.random() < 0.6 else [0]
        for i, st in enumerate(hits):
            nxt = hits[i + 1] if i + 1 < len(hits) else bar_t
            for v in voicing:
                events.append((t0 + st, 1, chord_root + 12 + v, int(rng.integers(55, 80)), max(nxt - st - 30, 60)))
    mid = mido.MidiFile(ticks_per_beat=tpq)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=int(round(60e6 / bpm)), time=0))
    tr.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    tr.append(mido.Message("program_change", channel=0, program=programs[0], time=0))
    tr.append(mido.Message("program_change", channel=1, program=programs[1], time=0))
    msgs = []
    for t, ch, note, vel, dur in events:
        msgs.append((t, 1, mido.Message("note_on", channel=ch, note=int(note), velocity=int(vel))))
        msgs.append((t + dur, 0, mido.Message("note_off", channel=ch, note=int(note), velocity=0)))
    msgs.sort(key=lambda m: (m[0], m[1]))
    now = 0
    for t, _, m in msgs:
        tr.append(m.copy(time=t - now))
        now = t
    return mid


def midi_items(out: Path, target_seconds: float = 28.0) -> list[dict]:
    def one(spec):
        name, bpm, num, den, groups, sr, ch, programs, root, seed = spec
        bar_s = num * 4 / den * 60 / bpm
        bars = int(np.ceil(target_seconds / bar_s))
        mid = groove_midi(bpm, num, den, groups, programs, root, seed, bars)
        with tempfile.TemporaryDirectory() as td:
            mp, wp = Path(td) / "g.mid", Path(td) / "g.wav"
            mid.save(mp)
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sr), "-F", str(wp), str(FONT), str(mp)],
                           check=True, capture_output=True)
            fsr, y = wavfile.read(wp)
        y = (y.T.astype(np.float32) / (32768.0 if y.dtype == np.int16 else 1.0))
        y = to_channels(y, ch)[:, :int(round(bars * bar_s * sr))]
        p = out / f"{name}.wav"
        write(p, y, sr)
        return dict(name=name, type="midi", path=str(p), sr=sr, channels=ch, seconds=y.shape[1] / sr,
                    grid=grid(bpm, num, den), grid_source="exact", source="mido + fluidsynth FluidR3_GM",
                    license="generated; FluidR3_GM soundfont MIT")
    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(one, GROOVES))


# ---------------------------------------------------------------- hydrogen

H2 = [("GM_kit_demo1", 115.0), ("TR808kit-demo", 125.0), ("GM_kit_demo2", 110.0)]


def hydrogen_items(out: Path, max_seconds: float = 40.0) -> list[dict]:
    def one(spec):
        song, bpm = spec
        p = out / f"h2_{song}.wav"
        raw = out / f"h2_{song}.raw.wav"
        if not raw.exists():
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
            with tempfile.TemporaryDirectory() as td:    # h2cli writes config under $HOME
                env["HOME"] = td
                subprocess.run(["h2cli", "-s", str(H2SONGS / f"{song}.h2song"), "-o", str(raw), "-r", "48000"],
                               env=env, capture_output=True, timeout=600)
        x, sr = read_audio(raw)
        bars = int(max_seconds / (240.0 / bpm))
        x = x[:, :int(round(bars * 240.0 / bpm * sr))]
        write(p, x, sr)
        return dict(name=f"h2_{song}", type="hydrogen", path=str(p), sr=sr, channels=x.shape[0],
                    seconds=x.shape[1] / sr, grid=grid(bpm), grid_source="exact",
                    source=f"hydrogen-data {song}.h2song via h2cli", license="GPL-2+ (hydrogen-data)")
    with ThreadPoolExecutor(len(H2)) as ex:
        return list(ex.map(one, H2))


# ---------------------------------------------------------------- tracks

TRACKS = [("Nebula", 60.0), ("Coherence", 60.0), ("Media Threat", 90.0), ("Awakening", 60.0)]


def onset_envelope(mono: np.ndarray, sr: int, hop: int = 512) -> np.ndarray:
    n_fft = 2048
    frames = 1 + (len(mono) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    S = np.abs(np.fft.rfft(mono[idx] * np.hanning(n_fft), axis=1))
    L = np.log1p(100 * S)
    flux = np.maximum(np.diff(L, axis=0), 0).sum(axis=1)
    return np.concatenate(([0.0], flux - np.convolve(flux, np.ones(16) / 16, "same")))


def estimate_grid(x: np.ndarray, sr: int) -> tuple[dict, float]:
    """Tempo by onset-envelope autocorrelation (60-180 BPM, log-Gaussian prior at 120),
    beat phase by comb sum. Returns (grid, confidence = peak autocorrelation / zero lag)."""
    hop = 512
    env = onset_envelope(x.mean(axis=0), sr, hop)
    env = np.maximum(env, 0)
    fps = sr / hop
    ac = np.correlate(env, env, "full")[len(env) - 1:]
    best, best_score = None, -np.inf
    for bpm in np.arange(60.0, 180.0, 0.1):
        lag = 60.0 * fps / bpm
        score = sum(np.interp(k * lag, np.arange(len(ac)), ac) for k in (1, 2, 4)) / 3
        score *= np.exp(-0.5 * (np.log2(bpm / 120.0) / 0.6) ** 2)
        if score > best_score:
            best, best_score = bpm, score
    period = 60.0 * fps / best
    phases = np.arange(0, period, 0.25)
    t = np.arange(len(env))
    comb = [np.interp(np.arange(p, len(env) - 1, period), t, env).sum() for p in phases]
    downbeat = phases[int(np.argmax(comb))] / fps
    return grid(round(best, 1), 4, 4, downbeat), float(best_score / max(ac[0], 1e-12))


def track_items(out: Path, seconds: float = 30.0) -> list[dict]:
    items = []
    for title, at in TRACKS:
        src = SINGULARITY / f"{title}.ogg"
        x, sr = read_audio(src)
        x = x[:, int(at * sr):int((at + seconds) * sr)]
        g, conf = estimate_grid(x, sr)
        name = "track_" + title.replace(" ", "_")
        p = out / f"{name}.wav"
        write(p, x, sr)
        items.append(dict(name=name, type="track", path=str(p), sr=sr, channels=x.shape[0],
                          seconds=x.shape[1] / sr, grid=g, grid_source="estimated", grid_confidence=conf,
                          source=f"singularity-music {title}.ogg from {at:g} s", license="CC BY-SA 3.0"))
    return items


# ---------------------------------------------------------------- main

def build(out: Path, force: bool = False) -> list[dict]:
    manifest = out / "manifest.json"
    if manifest.exists() and not force:
        return json.loads(manifest.read_text())
    ensure_packages()
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for make in (tiled_items, arrangement_items, midi_items, hydrogen_items, track_items):
        got = make(out)
        for it in got:
            print(f"{it['type']:17s} {it['name']:32s} {it['seconds']:5.1f} s {it['sr']} Hz {it['channels']} ch "
                  f"grid {it['grid']['bpm']:.2f} BPM {it['grid']['num']}/{it['grid']['den']} ({it['grid_source']})",
                  file=sys.stderr)
        items += got
    manifest.write_text(json.dumps(items, indent=1))
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "corpus")
    ap.add_argument("--force", action="store_true", help="rebuild even if manifest.json exists")
    a = ap.parse_args(argv)
    items = build(a.out, a.force)
    print(f"{len(items)} items in {a.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
