"""Speed of janssen_fill for the engine's short-gap path (gaps < 100 ms).

    .venv/bin/python bench/janssen_speed.py [--repeats 7]

Prints a markdown table of median CPU time (process time, so other load on the
machine does not inflate it) and median wall time per call, for gaps of
5-100 ms at 22.05, 44.1, 48 and 96 kHz, mono and stereo, default order and
iterations, plus iterations=1. Signal: sonic-pi's guit_em9 (a sustained guitar
chord), resampled; a synthetic decaying tone if sonic-pi-samples is missing.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from segue.engine.dsp.janssen import janssen_fill  # noqa: E402

SRC = Path("/usr/share/sonic-pi/samples/guit_em9.flac")


def source(sr: int) -> np.ndarray:
    if SRC.exists():
        from pedalboard.io import AudioFile
        with AudioFile(str(SRC)) as f:
            x, fsr = f.read(f.frames), int(f.samplerate)
        g = np.gcd(fsr, sr)
        return resample_poly(x, sr // g, fsr // g, axis=1)
    t = np.arange(4 * sr) / sr
    x = sum(np.exp(-t * k) / k * np.sin(2 * np.pi * 196 * k * t) for k in range(1, 10))
    return np.stack([x, np.roll(x, 7)])


def snr(t, e):
    return 10 * np.log10(np.sum(t ** 2) / max(np.sum((t - e) ** 2), 1e-30))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    print("| sr | ch | gap ms | iterations | CPU ms (median) | wall ms (median) | SNR dB (median) |")
    print("|---|---|---|---|---|---|---|")
    for sr in (22050, 44100, 48000, 96000):
        x = source(sr)
        for ch in (1, 2):
            xc = x[:ch]
            for ms in (5, 10, 20, 50, 100):
                for its in (None, 1):
                    if its == 1 and not (sr == 48000 and ms in (50, 100)):
                        continue
                    G = int(sr * ms / 1000)
                    cpu, wall, q = [], [], []
                    for r in range(a.repeats):
                        s = int(0.4 * sr) + r * int(0.21 * sr)
                        w0, c0 = time.perf_counter(), time.process_time()
                        y = janssen_fill(xc, s, G, iterations=its)
                        cpu.append(time.process_time() - c0)
                        wall.append(time.perf_counter() - w0)
                        q.append(snr(xc[:, s:s + G], y))
                    print(f"| {sr} | {ch} | {ms} | {its or 2} | {1e3 * np.median(cpu):.1f} | "
                          f"{1e3 * np.median(wall):.1f} | {np.median(q):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
