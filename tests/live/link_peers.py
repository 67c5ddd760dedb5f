"""Two Link peers in one private network namespace: a "band" peer (LinkPython directly) and the jam's LinkClock.
Run only inside `unshare --net` with loopback up (it refuses otherwise: Link multicasts on every interface).
Prints one JSON line with what the jam's clock saw. Used by tests/test_jam_link.py."""

import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

names = [n for _, n in socket.if_nameindex()]
if names != ["lo"]:
    print(json.dumps({"refused": f"interfaces {names}: not a loopback-only namespace"}))
    sys.exit(3)

import link  # noqa: E402

from segue.bridge.jam.clock import FrameStamper, now  # noqa: E402
from segue.bridge.jam.link import LinkClock  # noqa: E402

SR = 48000
band = link.Link(133.0)
band.enabled = True
jam = LinkClock(120.0, SR, "4/4")
stamper = FrameStamper()
t0 = now()


def tick():
    """A stand-in audio callback: frames advance with the host clock in 256-frame blocks."""
    t = now()
    frame = int((t - t0) * SR) // 256 * 256
    stamper.mark(t0 + frame / SR, frame, 256)
    return jam.map(stamper)


def wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = tick()
        if pred(m):
            return m
        time.sleep(0.01)
    return tick()


def set_band_tempo(bpm):
    s = band.captureSessionState()
    s.setTempo(bpm, band.clock().micros())
    band.commitSessionState(s)


# Two fresh peers join into one session whose tempo either may have set: wait for the peer, then lead.
out = {"peers": 0}
wait(lambda m: jam.peers >= 1 and m is not None)
out["peers"] = jam.peers
set_band_tempo(133.0)
m = wait(lambda m: abs(m.bpm - 133.0) < 0.01)
out["bpm1"] = m.bpm


def phase_error(m):
    """Band's phase (beats within the bar) at the jam's newest mark, minus the jam's, in ms."""
    t, f = stamper.marks[-1]
    band_phase = band.captureSessionState().phaseAtTime(int(t * 1e6), 4.0)
    jam_phase = (m.tick_at_frame(f) / 24.0) % 4.0
    d = (jam_phase - band_phase + 2.0) % 4.0 - 2.0
    return d * 60.0 / m.bpm * 1000.0


time.sleep(0.3)
out["phase_ms1"] = phase_error(tick())
set_band_tempo(141.0)
m = wait(lambda m: abs(m.bpm - 141.0) < 0.01)
out["bpm2"] = m.bpm
time.sleep(0.3)
m = tick()
out["phase_ms2"] = phase_error(m)
jam.close()
band.enabled = False
print(json.dumps(out))
