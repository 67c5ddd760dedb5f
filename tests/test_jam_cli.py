"""`segue jam` refuses bad input with a clear message and an exit code, never a traceback (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT


def jam(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("JACK_DEFAULT_SERVER", None)
    env["XDG_DATA_HOME"] = os.path.join(tempfile.gettempdir(), "segue-jam-cli-test")  # not the user's folder
    return subprocess.run([sys.executable, "-m", "segue.engine.cli", "jam", "--status", "off", *args], env=env,
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, code, message", [
    (["--bpm", "500"], 2, "--bpm 500 is outside 20-400"),
    (["--clock", "fixed"], 2, "--clock fixed needs --bpm"),
    (["--sig", "4/5", "--bpm", "120"], 2, "power of two"),
    (["--learn", "dance", "--triggers", "/tmp/t.toml"], 2, "--learn 'dance' is not one of"),
    (["--learn", "stop"], 2, "--learn needs --triggers"),
    (["--in-channels", "0", "--bpm", "120"], 2, "input channels '0' must be numbers from 1"),
    (["--bpm", "120", "--audio-api", "no-such-api", "--midi-api", "UNIX_JACK"], 1, "no audio API matching"),
    (["--bpm", "120", "--port", "99999"], 2, "--port: 99999 is outside 1-65535"),
    (["--bpm", "120", "--timeout", "-1"], 2, "--timeout: -1 must be above 0"),
    (["--bpm", "120", "--buffer-seconds", "0"], 2, "--buffer-seconds: 0 must be at least 1"),
    (["--bpm", "120", "--samplerate", "0"], 2, "--samplerate: 0 must be at least 8000"),
    # an offset of inf was an OverflowError traceback, nan "cannot convert float NaN to integer"
    (["--bpm", "120", "--offset-ms", "inf"], 2, "--offset-ms inf must be a number of milliseconds within +-1000"),
    (["--bpm", "120", "--offset-ms", "nan"], 2, "--offset-ms nan must be"),
    # a non-loopback engine without --token: the engine worker died on a traceback, triggers were lost
    (["--bpm", "120", "--host", "192.0.2.7"], 2, "--host 192.0.2.7 is not loopback"),
])
def test_bad_input_is_a_clear_message(args, code, message):
    run = jam(*args)
    assert run.returncode == code, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_bad_trigger_file_names_the_entry(tmp_path):
    bad = tmp_path / "t.toml"
    bad.write_text('[[trigger]]\nnote = 300\naction = "stop"\n')
    run = jam("--bpm", "120", "--triggers", str(bad))
    assert run.returncode == 1 and "entry 1: note must be an integer 0-127" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_no_default_audio_device_is_named_not_device_minus_one(monkeypatch):
    """A machine without a sound card: PortAudio's default device is -1 and querying it said only
    "Error querying device -1"; the jam now says what is missing and how to choose a device."""
    sd = pytest.importorskip("sounddevice")
    from segue.bridge.jam.audio import JamAudio
    from segue.bridge.jam.clock import FrameStamper
    from segue.bridge.jam.ringbuffer import RingBuffer
    from segue.bridge.jam.scheduler import Mixer

    real = sd.query_devices

    def query(device=None, kind=None):
        if device is None and kind is not None:
            raise sd.PortAudioError("Error querying device -1")
        return real(device) if device is not None else real()

    monkeypatch.setattr(sd, "query_devices", query)
    with pytest.raises(RuntimeError) as e:
        JamAudio(RingBuffer(48000, 2), Mixer(2), FrameStamper(), [0, 1], [0, 1])
    assert "no default audio output device" in str(e.value) and "--device-out" in str(e.value)


def test_a_bars_trigger_without_a_number_says_so():
    """A note learned for "bars" with no `bars =` in the trigger file raised TypeError in the control loop at
    every press."""
    from segue.bridge.jam.app import Jam, JamConfig
    from segue.bridge.jam.triggers import Action

    jam = Jam(JamConfig(bpm=120.0, clock="fixed"))
    assert "carries no number of bars" in jam._act(Action("bars"), 0.0)
    assert jam._act(Action("bars", bars=2.0), 0.0) == "bars 2" and jam.bars_out == 2.0


def test_clock_out_starts_on_a_sixteenth_so_song_position_is_exact():
    """A Song Position Pointer counts sixteenths and the tick after Continue sounds at that sixteenth. The
    sender rounded the position down and ticked on from the exact tick, so gear ran up to 5 ticks (up to
    65 ms at 120 BPM) late. A follower fed the sender's own messages lands on the sender's bar lines."""
    import mido

    from segue.bridge.jam.clock import MidiClockFollower, MidiClockSender, fixed_map

    class Port:
        def __init__(self):
            self.sent = []

        def send(self, msg):
            self.sent.append((frame, msg))

    import threading
    sender = object.__new__(MidiClockSender)
    sender._mido, sender.port, sender.next_tick, sender.lock = mido, Port(), None, threading.Lock()
    cmap = fixed_map(120.0, 48000, "4/4")                       # 1000 frames a tick, bar 0 at frame 0
    follower = MidiClockFollower(48000)
    frame = 7300.0                                              # 7.3 ticks in: between two sixteenths
    while frame < 7300.0 + 3 * 96000:
        sender.poll(cmap, frame)
        frame += 256.0
    for f, msg in sender.port.sent:                             # stamped at the poll that sent them
        follower.feed(f, msg.type, getattr(msg, "pos", None))
    first = sender.port.sent[0][1]
    assert first.type == "songpos" and first.pos == 2           # the next sixteenth: tick 12, not 6
    assert abs(follower.map.frame_of_bar(2) - cmap.frame_of_bar(2)) < 256, follower.map.frame_of_bar(2)
