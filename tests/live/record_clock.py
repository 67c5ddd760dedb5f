"""Record MIDI clock streams as the jam sees them through a real JACK MIDI port, for replay in
tests/test_jam_clock.py (deterministic, but with the real path's quantisation to JACK cycles and its delivery
jitter under load). Needs a JACK server (scripts/jack.sh start NAME; export JACK_DEFAULT_SERVER=NAME).

    python tests/live/record_clock.py tests/live/clock_streams.json

Each stream: the band's true tick frames (JACK frames) and what the jam's FrameStamper made of each message's
arrival: [frame, kind, value].
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from segue.bridge.jam.clock import FrameStamper, MidiInput, now  # noqa: E402
from tests.live.harness import SR, Band, wait_for_ports  # noqa: E402


def record(name: str, bpms: np.ndarray, jitter_ms: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    stamper = FrameStamper()
    inp = MidiInput(None, "UNIX_JACK", virtual_name="rec_in", client_name=f"rec-{name}")
    band = Band(f"band-{name}", channels=1)
    band.on_cycle = lambda f0, n, t: stamper.mark(now(), f0, n)
    try:
        wait_for_ports(band.client, [f"rec-{name}:rec_in"])
        band.client.connect(f"band-{name}:midi_out", f"rec-{name}:rec_in")
        t0 = band.frame + SR // 2
        fpt = 60.0 * SR / (24 * bpms)
        truth = t0 + np.concatenate([[0.0], np.cumsum(fpt)])
        sent = np.round(truth + rng.uniform(-1, 1, len(truth)) * jitter_ms * SR / 1000).astype(int)
        band.schedule([(t0 - 64, b"\xfa")] + [(int(f), b"\xf8") for f in sent])
        seen = []
        while band.frame < truth[-1] + 2048:
            while inp.events:
                t, msg = inp.events[0]
                f = stamper.to_frame(t)
                if f is None:
                    break
                inp.events.popleft()
                seen.append([round(f, 2), msg.type, getattr(msg, "pos", None)])
            time.sleep(0.002)
    finally:
        band.close()
        inp.close()
    return {"name": name, "sr": SR, "jitter_ms": jitter_ms, "truth": [round(x, 2) for x in truth], "seen": seen}


if __name__ == "__main__":
    streams = [record("steady_jitter", np.full(384, 120.0), 1.0, 1),
               record("drift", np.linspace(119.0, 121.0, 384), 0.0, 2)]
    Path(sys.argv[1]).write_text(json.dumps(streams))
