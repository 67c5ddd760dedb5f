"""`segue jam` through real JACK audio and MIDI ports (a named JACK server on the dummy driver, sync mode).

- the clock follower behind a real JACK MIDI port (python-rtmidi's JACK API via mido), fed by a JACK-Client
  "band" that writes clock, Start/Stop/Continue and Song Position at exact frames;
- end to end: a real `segue serve --backend dsp` process, a real `segue jam` process, the band playing a drum
  loop and MIDI clock into it, a recorder taking its output: the continuation starts on the intended bar line
  within 1 ms, has the requested length, and is the engine's result sample for sample;
- triggers by MIDI (learn mode), OSC, the engine not running, MIDI clock out.

Everything is measured in JACK frames, never in wall time (live.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import free_port, groove, read_audio, start_engine, stop_engine
from tests.live.harness import (PERIOD, SR, Band, JackServer, Recorder, clock_events, rewire, wait_for_ports,
                                wait_frames)
from tests.live.jamproc import Jam

pytestmark = pytest.mark.skipif(JackServer.unavailable() is not None,
                                reason=f"JACK path unavailable: {JackServer.unavailable()}")


@pytest.fixture(scope="module")
def jack_server():
    keys = ("JACK_DEFAULT_SERVER", "MIDO_BACKEND", "JACK_NO_AUDIO_RESERVATION")
    saved = {k: os.environ.get(k) for k in keys}
    server = JackServer(f"segue-test-{os.getpid()}")
    server.start()  # sets those variables for this process and the jams it starts
    yield server
    server.stop()  # every PortAudio user (the jam processes) has exited by now
    for k, v in saved.items():  # leave the environment as other test modules expect it
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# ------------------------------------------------------------------ clock follower through JACK MIDI

def test_clock_follower_through_a_real_jack_midi_port(jack_server):
    import mido

    from segue.bridge.jam.clock import FrameStamper, MidiClockFollower, MidiInput

    stamper = FrameStamper()
    inp = MidiInput(None, "UNIX_JACK", virtual_name="clock_in", client_name="follower")
    band = Band("band-clock", channels=1)
    band.on_cycle = lambda f0, n, t: stamper.mark(_now(), f0, n)  # the band's cycles stand in for audio callbacks
    try:
        wait_for_ports(band.client, ["follower:clock_in"])
        band.client.connect("band-clock:midi_out", "follower:clock_in")
        fpt1, fpt2 = 1000.0, 60.0 * SR / (24 * 150.0)
        t0 = band.frame + SR // 2
        ev = clock_events(t0, 120.0, 24 * 4 * 2)  # Start, 2 bars at 120
        t1 = t0 + 192 * 1000
        ev += [(t1 + int(np.floor(k * fpt2 + 0.5)), b"\xf8") for k in range(24 * 4 * 2)]  # 2 bars at 150
        t2 = t1 + int(192 * fpt2)
        ev += [(t2 + 100, b"\xfc")]  # Stop
        spp = mido.Message("songpos", pos=16 * 8).bytes()  # jump to bar 8
        t3 = t2 + SR // 2
        ev += [(t3 - 300, bytes(spp)), (t3 - 200, b"\xfb")]  # then Continue
        ev += [(t3 + int(np.floor(k * fpt2 + 0.5)), b"\xf8") for k in range(24 * 4 + 1)]
        band.schedule(ev)
        follower = MidiClockFollower(SR)
        snaps = {}
        end = t3 + int(97 * fpt2) + 4 * PERIOD
        deadline = time.monotonic() + 120
        while band.frame < end and time.monotonic() < deadline:
            while inp.events:
                t, msg = inp.events[0]
                f = stamper.to_frame(t)
                if f is None:
                    break
                inp.events.popleft()
                follower.feed(f, msg.type, getattr(msg, "pos", None))
                if msg.type == "clock" and follower.running:
                    snaps[follower.next_tick - 1] = follower.map
                elif msg.type == "stop":
                    snaps["stopped"] = follower.map
            time.sleep(0.002)
    finally:
        band.close()
        inp.close()
    # One bar at 120: tempo within 0.5 %, bar 1's line within 1 ms.
    m = snaps[96]
    assert abs(m.bpm - 120.0) / 120.0 < 0.005, m
    assert abs(m.frame_of_bar(1) - (t0 + 96 * fpt1)) < 48
    assert m.bar_beat(t0 + 96 * fpt1 + 100)[0] == 1
    # One bar after the change to 150: followed.
    m = snaps[192 + 96]
    assert abs(m.bpm - 150.0) / 150.0 < 0.005, m
    assert abs(m.frame_of_bar(3) - (t1 + 96 * fpt2)) < 48
    # Stop freezes; Song Position bar 8 + Continue: the first tick is bar 8's line.
    assert not snaps["stopped"].running
    m = snaps[8 * 96 + 96]
    assert abs(m.frame_of_bar(8) - t3) < 48 and abs(m.frame_of_bar(9) - (t3 + 96 * fpt2)) < 48
    assert abs(m.bpm - 150.0) / 150.0 < 0.005


def _now():
    from segue.bridge.jam.clock import now

    return now()


# ------------------------------------------------------------------ the jam process

def test_end_to_end_continuation_starts_on_the_bar_line_and_is_the_engines_result(jack_server, tmp_path):
    """Drum loop + MIDI clock in, a trigger 20 ms before bar 3: the dsp continuation of bars 0-1 (one bar
    long, looped) must start on the first bar line after it was ready, within 1 ms (late generation waits
    for the next bar line, never mid-bar), be the engine's file sample for sample, repeat every bar, and
    fade out on clock Stop."""
    engine = start_engine(tmp_path / "e")
    band, rec = Band("band"), Recorder("rec")
    jam = Jam(tmp_path, engine.port, "--context", "2", "--bars", "1", "--loop",
              "--workdir", str(engine.root / "jam"))
    try:
        jam.wait_ready()
        wait_for_ports(band.client, ["segue-jam:in", "PortAudio:in_0", "PortAudio:out_1"])
        rewire(band.client, [("band:out_0", "PortAudio:in_0"), ("band:out_1", "PortAudio:in_1"),
                             ("PortAudio:out_0", "rec:in_0"), ("PortAudio:out_1", "rec:in_1"),
                             ("band:midi_out", "segue-jam:in")])
        bar = 96000  # 120 BPM, 4/4, 48 kHz
        t0 = band.frame + SR
        loop = groove(6.5 * 2.0, SR, bpm=120.0).T.copy()
        band.audio_start, band.audio = t0, loop
        trigger = t0 + int(2.99 * bar)
        stop_at = t0 + int(5.5 * bar)
        band.schedule(clock_events(t0, 120.0, int(5.5 * 96)) + [(trigger, b"\x90\x24\x64"), (trigger + 480, b"\x80\x24\x00"),
                                                                  (stop_at, b"\xfc")])
        rec.arm(t0, int(6.5 * bar))
        wait_frames(band.client, t0 + int(6.5 * bar) + 4 * PERIOD)
        st = jam.status()
    finally:
        code = jam.stop()
        band.close()
        rec.close()
        stop_engine(engine)
    log = jam.log.read_text()
    assert code == 0, log
    assert st["clock"]["state"] == "stopped", st
    assert len(st["launched"]) == 1, log
    launch = st["launched"][0]
    # The first bar line after the result was ready (20 ms before bar 3 was the trigger: normally late for
    # bar 3, so bar 4), never mid-bar.
    assert launch["bar"] in (3, 4), (launch, log)
    assert 0 <= launch["start"] - launch["ready_frame"] < bar, launch
    result, sr = read_audio(launch["path"])
    result = result.T  # (frames, channels)
    bpm = launch["bpm"]
    assert sr == SR and abs(bpm - 120.0) < 0.6
    assert len(result) == int(np.floor(1 * 4 * 60.0 / bpm * SR + 0.5))  # the requested length: one bar
    out = rec.data
    first = int(np.flatnonzero(np.any(out != 0, axis=1))[0])
    # Where the result sits in the recording: the offset where the samples match exactly (the declick
    # fades only touch its first and last 96 samples).
    n, fade = len(result), 96
    hits = [o for o in range(max(0, first - 2000), first + 2000)
            if np.array_equal(out[o + fade:o + fade + 2000], result[fade:fade + 2000])]
    assert len(hits) == 1, f"the engine's samples are not in the output (first sound at {first})"
    start = hits[0]
    assert np.array_equal(out[start + fade:start + n - fade], result[fade:n - fade]), "not the engine's samples"
    assert not out[:start].any()
    line = launch["bar"] * bar
    assert abs(start - line) <= 48, f"starts {start - line} frames from bar {launch['bar']}'s line"
    # Looped: the second pass is the same samples one clip length later (until the clock stops).
    upto = stop_at - t0 - 2 * PERIOD - (start + n)
    assert upto > SR // 2
    assert np.array_equal(out[start + n + fade:start + n + upto], result[fade:upto])
    print(f"start error {start - line} frames; launch {launch}")
    # Clock Stop at bar 5.5: faded out within the fade and one period, silence after.
    silent_from = stop_at - t0 + fade + 2 * PERIOD
    assert not out[silent_from:].any() and out[stop_at - t0 - 2 * PERIOD - 1000:stop_at - t0 - 2 * PERIOD].any()
    # The bars sent to the engine are the band's bars 0-1, cut on the grid (within 1 ms).
    src, _ = read_audio(Path(engine.root / "jam") / f"jam-{launch['id']}.wav")
    assert abs(src.shape[1] - 2 * bar) <= 96  # two bars at the estimated tempo
    lag = _lag(src[0], loop[:2 * bar, 0])
    assert abs(lag) <= 48, f"source bars off the grid by {lag} frames"


def _lag(a: np.ndarray, b: np.ndarray, search: int = 512) -> int:
    """Frames by which a is b delayed (positive: a starts later), by exact cross-correlation in +-search."""
    best, lag = -np.inf, 0
    core = b[search:min(len(a), len(b)) - search]
    for d in range(-search, search + 1):
        c = float(np.dot(a[search + d:search + d + len(core)], core))
        if c > best:
            best, lag = c, d
    return lag


def test_triggers_learn_osc_clock_out_and_no_engine(jack_server, tmp_path):
    """Fixed tempo with MIDI clock out; learn mode maps a CC pressed on a JACK MIDI port; OSC actions; with no
    engine listening a trigger gives a clear message and the audio keeps running."""
    triggers = tmp_path / "triggers.toml"
    band = Band("band-trig", channels=1)
    dead_port = free_port()  # nothing listens here
    jam = Jam(tmp_path, dead_port, "--bpm", "120", "--clock-out", "virtual", "--triggers", str(triggers),
              "--workdir", str(tmp_path / "work"), "--status", "on")
    try:
        jam.wait_ready()
        wait_for_ports(band.client, ["segue-jam:in", "segue-jam-clock:clock_out", "PortAudio:out_0"])
        rewire(band.client, [("band-trig:midi_out", "segue-jam:in"),
                             ("segue-jam-clock:clock_out", "band-trig:midi_in")])
        assert jam.send("/jam/learn", "continue") == ("/jam/ok", ["learn:continue", "learn: press the note or CC "
                                                                  "for 'continue'"])
        f = band.frame + 2 * PERIOD
        band.schedule([(f, b"\xb0\x46\x7f")])  # CC 70 on channel 1
        _until(lambda: triggers.exists(), "learn mode did not write the trigger file")
        assert 'cc = 70' in triggers.read_text() and 'action = "continue"' in triggers.read_text()
        _until(lambda: jam.status()["buffer_bars"] > 1.2, "one bar was not recorded", timeout=60)
        frame0 = jam.status()["frame"]
        band.schedule([(band.frame + 2 * PERIOD, b"\xb0\x46\x7f")])  # the learned CC now triggers continue
        _until(lambda: any("no engine answered" in m and "audio keeps running" in m
                           for m in jam.status()["messages"]),
               "no clear message when the engine is not running")
        st = jam.status()
        assert st["frame"] > frame0 and st["clock"]["running"]  # the audio keeps running
        assert jam.send("/jam/bars", 2) == ("/jam/ok", ["bars", "bars 2"])
        assert jam.send("/jam/loop")[0] == "/jam/ok" and jam.status()["loop"] is True
        assert jam.send("/jam/stop")[0] == "/jam/ok"
        assert jam.send("/jam/dance")[0] == "/jam/error"
        assert jam.send("/jam/continue", "x")[1][0] == "bad_request"
        # MIDI clock out at 120 BPM: ticks 1000 frames apart on average, measured in JACK frames.
        band.received.clear()
        start = band.frame
        wait_frames(band.client, start + 3 * SR)
        ticks = [f for f, m in band.received if m == b"\xf8"]
        assert len(ticks) >= 100
        spacing = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
        assert abs(spacing - 1000.0) / 1000.0 < 0.005, spacing
    finally:
        code = jam.stop()
        band.close()
    log = jam.log.read_text()
    assert code == 0, log
    # The status line: tempo and source, bar:beat, input level, buffer fill, clips, xruns.
    line = [x for x in log.splitlines() if "BPM" in x][-1]  # (read_text turns the \r rewrites into lines)
    assert "120.00 BPM fixed" in line and " dB " in line and "bars" in line and "xruns" in line, line


def _play_band_into(jam, band, seconds: float) -> None:
    """Once the jam answers, the band's two outputs feed its inputs, playing a 120 BPM groove from now."""
    jam.wait_ready()
    wait_for_ports(band.client, ["PortAudio:in_0"])
    name = band.client.name
    rewire(band.client, [(f"{name}:out_0", "PortAudio:in_0"), (f"{name}:out_1", "PortAudio:in_1")])
    band.audio_start, band.audio = band.frame, groove(seconds, SR, bpm=120.0).T.copy()


def _until(cond, message: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(message)


def test_fixed_tempo_generate_ahead_launches_on_the_very_next_bar(jack_server, tmp_path):
    """--bpm 120 (bar lines at jam frames k * 96000 exactly) with generate-ahead: an OSC trigger launches the
    continuation that is already ready on the next bar line; /jam/variation asks for another take."""
    engine = start_engine(tmp_path / "e")
    band = Band("band-ahead")
    jam = Jam(tmp_path, engine.port, "--bpm", "120", "--ahead", "--context", "2", "--bars", "1",
              "--workdir", str(engine.root / "jam"))
    bar = 96000
    try:
        _play_band_into(jam, band, 30.0)
        _until(lambda: jam.status()["ready"], "generate-ahead kept nothing ready", timeout=60)
        st0 = jam.status()
        assert jam.send("/jam/continue")[0] == "/jam/ok"
        _until(lambda: len(jam.status()["launched"]) == 1, "the ready continuation was not launched")
        launch = jam.status()["launched"][0]
        assert launch["start"] % bar == 0  # exactly on a bar line of the fixed grid
        assert 0 < launch["start"] - launch["trigger_frame"] <= bar  # the very next one
        assert launch["trigger_frame"] >= st0["frame"]
        assert jam.send("/jam/variation")[0] == "/jam/ok"
        _until(lambda: len(jam.status()["launched"]) == 2, "the variation was not launched")
        second = jam.status()["launched"][1]
        assert second["start"] % bar == 0 and second["start"] > launch["start"]
        assert second["path"] != launch["path"]
    finally:
        code = jam.stop()
        band.close()
        stop_engine(engine)
    assert code == 0, jam.log.read_text()


def test_terminal_keys(jack_server, tmp_path):
    """Keys on a real terminal (a pty): digits set the bar count, 'l' toggles loop, 'm' then 's' learns the
    stop action, 'q' quits cleanly."""
    import pty

    master, slave = pty.openpty()
    jam = Jam(tmp_path, free_port(), "--bpm", "120", "--triggers", str(tmp_path / "t.toml"),
              "--workdir", str(tmp_path / "work"), stdin=slave)
    try:
        jam.wait_ready()
        os.write(master, b"3")
        _until(lambda: jam.status()["bars"] == 3.0, "key 3 did not set 3 bars")
        os.write(master, b"l")
        _until(lambda: jam.status()["loop"] is True, "key l did not toggle loop")
        os.write(master, b"ms")
        _until(lambda: any("learn: press the note or CC for 'stop'" in m for m in jam.status()["messages"]),
               "m then s did not start learning 'stop'")
        os.write(master, b"q")
        assert jam.proc.wait(timeout=20) == 0, jam.log.read_text()
    finally:
        jam.stop()
        os.close(master)
        os.close(slave)


def test_quick_triggers_stop_while_generating_and_an_engine_that_dies(jack_server, tmp_path):
    """Three faults of one kind, a continuation's life after its trigger (fixed tempo, a real dsp engine):
    - ten quick /jam/continue made ten engine jobs whose clips launched on one bar line, summed (10x level);
      now the first is generated and the others are told it launches when ready;
    - /jam/stop while a continuation was generated let it launch anyway; now it is dropped;
    - an engine that stops answering mid-request killed the jam's engine worker (EngineGone), so every
      later trigger waited forever; now the next trigger works once an engine is up again."""
    import signal

    engine = start_engine(tmp_path / "e")
    band = Band("band-life")
    work = engine.root / "jam"
    jam = Jam(tmp_path, engine.port, "--bpm", "120", "--context", "2", "--bars", "1", "--workdir", str(work),
              "--timeout", "8")
    bar = 96000
    try:
        _play_band_into(jam, band, 120.0)
        _until(lambda: jam.status()["buffer_bars"] > 2.2, "two bars were not recorded", timeout=60)
        replies = [jam.send("/jam/continue")[1][-1] for _ in range(10)]
        assert sum("already being generated" in r for r in replies) == 9, replies
        _until(lambda: len(jam.status()["launched"]) == 1, "the continuation was not launched", timeout=60)
        f0 = jam.status()["frame"]
        wait_frames(band.client, band.frame + 3 * bar)
        st = jam.status()
        assert len(st["launched"]) == 1 and st["queued"] == 0, st     # one clip, nothing left to launch
        # Stop 30 ms after a trigger for 32 bars (generated for a while): dropped, never launched.
        assert jam.send("/jam/bars", 32)[0] == "/jam/ok"
        assert jam.send("/jam/continue")[0] == "/jam/ok"
        time.sleep(0.03)
        address, args = jam.send("/jam/stop")
        assert address == "/jam/ok" and "dropped 1 continuation" in args[-1], args
        wait_frames(band.client, band.frame + 3 * bar)
        _until(lambda: not jam.status()["generating"], "the dropped continuation still runs", timeout=30)
        assert len(jam.status()["launched"]) == 1
        # The engine stops answering mid-request, then dies; a new one starts on the same port.
        assert jam.send("/jam/continue")[0] == "/jam/ok"
        time.sleep(0.05)
        engine.proc.send_signal(signal.SIGSTOP)
        _until(lambda: any("the next trigger tries again" in m for m in jam.status()["messages"]),
               "the jam did not notice the engine had gone", timeout=40)
        engine.proc.kill()
        engine.proc.wait(timeout=10)
        import conftest
        free = conftest.free_port
        conftest.free_port = lambda: engine.port           # the new engine on the port the jam knows
        try:
            engine2 = start_engine(tmp_path / "e2", "--allow-dir", str(engine.root))
        finally:
            conftest.free_port = free
        try:
            assert jam.send("/jam/bars", 1)[0] == "/jam/ok"
            assert jam.send("/jam/continue")[0] == "/jam/ok"
            _until(lambda: len(jam.status()["launched"]) == 2, "no trigger worked after the engine came back",
                   timeout=60)
        finally:
            stop_engine(engine2)
        assert f0 < jam.status()["frame"]
    finally:
        code = jam.stop()
        band.close()
        if engine.proc.poll() is None:
            engine.proc.send_signal(signal.SIGCONT)
            stop_engine(engine)
    assert code == 0, jam.log.read_text()


def test_the_jack_server_going_away_ends_the_jam_with_a_message(jack_server, tmp_path):
    """jackd killed under a running jam: it froze silently (status 'running', 0 xruns), never came back, and
    SIGTERM then hung for over 20 s. Now it says the audio stopped and exits 1 within seconds."""
    keys = ("JACK_DEFAULT_SERVER", "MIDO_BACKEND")
    saved = {k: os.environ.get(k) for k in keys}
    # One fixed name: a killed server leaves its entry in JACK's registry of (at most 8) servers, and
    # only a server of the same name takes a dead entry back; a new name each run would fill it.
    server = JackServer("segue-test-gone")
    try:
        server.start()                               # the jam below runs on this server, not the module's
        jam = Jam(tmp_path, free_port(), "--bpm", "120", "--workdir", str(tmp_path / "work"))
        try:
            jam.wait_ready()
            server.proc.kill()
            server.proc.wait(timeout=10)
            code = jam.proc.wait(timeout=30)
        finally:
            if jam.proc.poll() is None:
                jam.proc.kill()
                jam.proc.wait(timeout=10)
            jam.sock.close()
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for p in Path("/dev/shm").glob(f"*{server.name}*"):   # a killed server leaves its semaphores
            p.unlink(missing_ok=True)
    log = jam.log.read_text()
    assert code == 1, log
    assert "audio stopped: no audio callback" in log and "JACK server" in log, log


def test_context_one_bar_continues(jack_server, tmp_path):
    """`--context 1` (allowed 1-64) never worked with dsp: one bar cut on its bar lines leaves 3 whole beats
    clear of the join, and dsp needs a bar to draw from (insufficient_context at every trigger). The jam
    now cuts the same trigger again with one more bar, says so, and launches."""
    engine = start_engine(tmp_path / "e")
    band = Band("band-ctx1")
    jam = Jam(tmp_path, engine.port, "--bpm", "120", "--context", "1", "--bars", "1",
              "--workdir", str(engine.root / "jam"))
    try:
        _play_band_into(jam, band, 60.0)
        _until(lambda: jam.status()["buffer_bars"] > 3.2, "three bars were not recorded", timeout=60)
        assert jam.send("/jam/continue")[0] == "/jam/ok"
        _until(lambda: len(jam.status()["launched"]) == 1, "--context 1 launched nothing", timeout=60)
        st = jam.status()
        assert any("needs more than 1 bar(s) of context: continuing the last 2 bars" in m for m in st["messages"]), st
        assert st["launched"][0]["source_bars"][1] - st["launched"][0]["source_bars"][0] == 2
    finally:
        code = jam.stop()
        band.close()
        stop_engine(engine)
    assert code == 0, jam.log.read_text()


def test_a_sample_rate_the_jack_server_does_not_run_at_is_named(jack_server, tmp_path):
    """--samplerate 44100 against a 48 kHz server gave only PortAudio's 'Invalid sample rate [-9997]'."""
    jam = Jam(tmp_path, free_port(), "--bpm", "120", "--samplerate", "44100", "--workdir", str(tmp_path / "w"))
    try:
        code = jam.proc.wait(timeout=60)
    finally:
        if jam.proc.poll() is None:
            jam.proc.kill()
        jam.sock.close()
    log = jam.log.read_text()
    assert code == 1 and "runs at 48000 Hz, --samplerate asked 44100" in log, log
    assert "Traceback" not in log
