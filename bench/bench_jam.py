"""`segue jam` timing through a real JACK graph (named server, dummy driver, sync mode, 48 kHz, 256 frames).

    .venv/bin/python bench/bench_jam.py [--triggers 12] [--bpm 120]

1. Trigger to sound: a JACK-Client band plays a drum loop and MIDI clock into a real `segue jam` process
   (engine: a real `segue serve --backend dsp`), and sends a trigger note at a random place in every other
   bar; a recorder takes the jam's output. Per launch: scheduled start - trigger (ms; the jam's own frames),
   and the start error against the band's bar line (JACK frames: where the engine's result is found sample
   for sample in the recording, minus the bar line the band played).
2. Generation time of `dsp` (OSC round trip, /segue/continue of 4 bars for 4 bars, a fresh source each time)
   against one bar at 90, 120 and 174 BPM.
3. xruns per minute in the jam while it generates (from its own status), over the run of part 1 and a
   generate-ahead run (a new continuation every bar) beside the same jam idle, in one run.
Prints markdown; the numbers go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from segue.bridge.client import request_args  # noqa: E402
from segue.bridge.protocol import Double  # noqa: E402
from conftest import groove, read_audio, start_engine, stop_engine, write_wav  # noqa: E402
from tests.live.harness import (PERIOD, SR, Band, JackServer, Recorder, clock_events, rewire,  # noqa: E402
                                wait_for_ports, wait_frames)
from tests.live.jamproc import Jam  # noqa: E402


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def trigger_to_sound(tmp: Path, n: int, bpm: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    bar = int(round(4 * 60.0 / bpm * SR))
    engine = start_engine(tmp / "e")
    band, rec = Band("bench-band"), Recorder("bench-rec")
    jam = Jam(tmp, engine.port, "--context", "2", "--bars", "1", "--workdir", str(engine.root / "jam"))
    bars_total = 3 + 2 * n + 2
    try:
        jam.wait_ready()
        wait_for_ports(band.client, ["segue-jam:in", "PortAudio:in_0", "PortAudio:out_1"])
        rewire(band.client, [("bench-band:out_0", "PortAudio:in_0"), ("bench-band:out_1", "PortAudio:in_1"),
                             ("PortAudio:out_0", "bench-rec:in_0"), ("PortAudio:out_1", "bench-rec:in_1"),
                             ("bench-band:midi_out", "segue-jam:in")])
        t0 = band.frame + SR
        band.audio_start, band.audio = t0, groove(bars_total * bar / SR, SR, bpm=bpm).T.copy()
        triggers = [t0 + (3 + 2 * k) * bar + int(rng.uniform(0.0, 0.98) * bar) for k in range(n)]
        ev = clock_events(t0, bpm, bars_total * 96)
        for f in triggers:
            ev += [(f, b"\x90\x24\x64"), (f + 480, b"\x80\x24\x00")]
        band.schedule(ev)
        rec.arm(t0, bars_total * bar)
        x0 = jam.status()
        wall0 = time.monotonic()
        wait_frames(band.client, t0 + bars_total * bar + 4 * PERIOD, timeout=600)
        st = jam.status()
        wall = time.monotonic() - wall0
    finally:
        jam.stop()
        band.close()
        rec.close()
        stop_engine(engine)
    out, fade = rec.data, 96
    t2s, errs, gens = [], [], []
    for launch in st["launched"]:
        t2s.append((launch["start"] - launch["trigger_frame"]) / SR * 1000.0)
        gens.append(launch["generate_s"])
        result = read_audio(launch["path"])[0].T
        line = launch["bar"] * bar  # in the recording's frames (it starts at the band's bar 0)
        probe = result[fade:fade + 2000]
        for d in range(-2000, 2001):
            o = line + d
            if o >= 0 and np.array_equal(out[o + fade:o + fade + 2000], probe):
                errs.append(d / SR * 1000.0)
                break
    return {"launched": len(st["launched"]), "triggers": n, "t2s": t2s, "errs": errs, "gens": gens,
            "xruns": st["xruns"] - x0["xruns"], "minutes": wall / 60.0}


def ahead_xruns(tmp: Path, seconds: float) -> dict:
    """The same jam idle (recording only) and generating ahead (a new continuation every bar), in alternating
    slices of one run: xruns and minutes for each."""
    engine = start_engine(tmp / "a")
    band = Band("bench-ahead")
    jam = Jam(tmp, engine.port, "--bpm", "120", "--context", "4", "--bars", "4",
              "--workdir", str(engine.root / "jam"))
    try:
        jam.wait_ready()
        wait_for_ports(band.client, ["PortAudio:in_0"])
        rewire(band.client, [("bench-ahead:out_0", "PortAudio:in_0"), ("bench-ahead:out_1", "PortAudio:in_1")])
        band.audio_start, band.audio = band.frame, groove(2 * seconds + 20, SR, bpm=120.0).T.copy()
        wait_frames(band.client, band.frame + 9 * SR)  # four bars recorded before anything is generated
        jam.send("/jam/ahead")  # on; the first toggle below turns it off for the first idle slice
        # Alternate idle and generating slices (ABABAB) so the load of other processes on the machine falls
        # on both about equally.
        out = {p: {"xruns": 0, "minutes": 0.0, "results": 0} for p in ("idle", "ahead")}
        for k in range(6):
            phase = ("idle", "ahead")[k % 2]
            jam.send("/jam/ahead")  # toggles: on for the ahead slices, off for the idle ones
            if phase == "idle":
                time.sleep(0.5)  # let a running generation finish before the idle slice starts
            x0, w0 = jam.status(), time.monotonic()
            wait_frames(band.client, band.frame + int(seconds / 3 * SR), timeout=600)
            st = jam.status()
            out[phase]["xruns"] += st["xruns"] - x0["xruns"]
            out[phase]["minutes"] += (time.monotonic() - w0) / 60.0
            out[phase]["results"] += st["results_total"] - x0["results_total"]
    finally:
        jam.stop()
        band.close()
        stop_engine(engine)
    return out


def dsp_generation(tmp: Path, rounds: int, backend: str = "dsp",
                   extra: tuple[str, ...] = ()) -> list[tuple[float, list[float]]]:
    engine = start_engine(tmp / "g", *extra, backend=backend)
    rows = []
    try:
        with engine.client() as c:
            for bpm in (90.0, 120.0, 174.0):
                times = []
                for k in range(rounds):
                    bar_s = 4 * 60.0 / bpm
                    src = write_wav(engine.root / f"src-{bpm:g}-{k}.wav", groove(4 * bar_s, SR, bpm=bpm, seed=k), SR)
                    args = request_args(f"g{bpm:g}-{k}", [str(src), Double(4 * bar_s), Double(4.0)],
                                        {"bpm": Double(bpm), "sr": SR, "out": str(engine.root)})
                    t = time.perf_counter()
                    out = c.call("/segue/continue", args, timeout=120)
                    dt = time.perf_counter() - t
                    assert out.ok, out.final.args
                    times.append(dt)
                rows.append((bpm, times))
    finally:
        stop_engine(engine)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--triggers", type=int, default=12)
    ap.add_argument("--bpm", type=float, default=120.0)
    ap.add_argument("--rounds", type=int, default=7, help="dsp generations per tempo")
    ap.add_argument("--ahead-seconds", type=float, default=40.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", default="dsp", help="backend for the generation-time part (e.g. sao-small)")
    ap.add_argument("--model", help="model folder for a neural backend (weights or a random full-size stand-in)")
    args = ap.parse_args()
    why = JackServer.unavailable()
    if why:
        print(f"bench_jam: {why}", file=sys.stderr)
        return 1
    server = JackServer(f"segue-bench-{os.getpid()}")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            t = trigger_to_sound(tmp, args.triggers, args.bpm, args.seed)
            a = ahead_xruns(tmp, args.ahead_seconds)
            g = dsp_generation(tmp, args.rounds, args.backend, ("--model", args.model) if args.model else ())
    finally:
        server.stop()
    print(f"segue jam benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; JACK dummy driver, sync mode, 48 kHz, {PERIOD}-frame periods\n")
    print(f"Trigger to sound at {args.bpm:g} BPM (bar {4 * 60 / args.bpm:.2f} s), {t['launched']}/{t['triggers']} "
          "triggers launched, continuation of 2 bars for 1 bar (dsp):\n")
    print("| measure | min | median | p90 | max |\n|---|---|---|---|---|")
    for name, xs in (("scheduled start - trigger (ms)", t["t2s"]), ("start error vs the bar line (ms)", t["errs"]),
                     ("trigger to result ready (s, jam's round trip)", t["gens"])):
        if xs:
            print(f"| {name} | {min(xs):.2f} | {statistics.median(xs):.2f} | {q(xs, 0.9):.2f} | {max(xs):.2f} |")
    print(f"\nstart errors found for {len(t['errs'])} of {t['launched']} launches\n")
    print(f"{args.backend} generation (OSC round trip, continue 4 bars -> 4 bars, 48 kHz stereo, fresh source "
          "each time):\n")
    print("| BPM | bar (s) | median (s) | max (s) | median / bar |\n|---|---|---|---|---|")
    for bpm, times in g:
        bar_s = 4 * 60.0 / bpm
        print(f"| {bpm:g} | {bar_s:.3f} | {statistics.median(times):.3f} | {max(times):.3f} | "
              f"{statistics.median(times) / bar_s:.3f} |")
    print("\nxruns in the jam while generating:\n")
    print("| run | minutes | xruns | per minute |\n|---|---|---|---|")
    print(f"| triggers (part 1) | {t['minutes']:.2f} | {t['xruns']} | {t['xruns'] / t['minutes']:.1f} |")
    for phase, label in (("idle", "same jam idle (recording only)"), ("ahead", "generate-ahead, 4 -> 4 bars")):
        r = a[phase]
        print(f"| {label} ({r['results']} continuations) | {r['minutes']:.2f} | {r['xruns']} | "
              f"{r['xruns'] / r['minutes']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
