"""A real `segue jam --clock link` process and a Link "band" peer, both inside one private network namespace
holding only loopback, with a JACK server (dummy driver) for the jam's audio. Prints one JSON line.
Used by tests/test_jam_link.py; refuses to run outside such a namespace (Link multicasts on every interface)."""

import json
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

names = [n for _, n in socket.if_nameindex()]
if names != ["lo"]:
    print(json.dumps({"refused": f"interfaces {names}: not a loopback-only namespace"}))
    sys.exit(3)

import link  # noqa: E402

from tests.live.harness import JackServer  # noqa: E402
from tests.live.jamproc import Jam, free_port  # noqa: E402

server = JackServer(f"segue-link-{os.getpid()}")
server.start()
band = link.Link(133.0)
band.enabled = True
out = {}
tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"segue-link-jam-{os.getpid()}"
tmp.mkdir(parents=True, exist_ok=True)
jam = Jam(tmp, free_port(), "--clock", "link", "--bpm", "100", "--workdir", str(tmp / "work"))


def set_band_tempo(bpm):
    s = band.captureSessionState()
    s.setTempo(bpm, band.clock().micros())
    band.commitSessionState(s)


def wait_tempo(bpm, timeout=20.0):
    end = time.monotonic() + timeout
    st = jam.status()
    while time.monotonic() < end:
        st = jam.status()
        if st["clock"]["bpm"] and abs(st["clock"]["bpm"] - bpm) < 0.01:
            break
        set_band_tempo(bpm)  # two fresh peers may settle on either tempo first: the band leads
        time.sleep(0.1)
    return st


def phase_error_beats():
    """Band's phase in the bar at the moment the jam's status arrives, minus the jam's (bar, beat)."""
    st = jam.status()
    band_phase = band.captureSessionState().phaseAtTime(band.clock().micros(), 4.0)
    jam_phase = st["beat"] % 4.0
    return (jam_phase - band_phase + 2.0) % 4.0 - 2.0


try:
    jam.wait_ready()
    st = wait_tempo(133.0)
    out.update(source=st["clock"]["source"], running=st["clock"]["running"], bpm1=st["clock"]["bpm"])
    out["phase1"] = min((phase_error_beats() for _ in range(5)), key=abs)
    st = wait_tempo(141.0)
    out["bpm2"] = st["clock"]["bpm"]
    time.sleep(0.3)
    out["phase2"] = min((phase_error_beats() for _ in range(5)), key=abs)
finally:
    out["exit"] = jam.stop()
    band.enabled = False
    server.stop()
print(json.dumps(out))
