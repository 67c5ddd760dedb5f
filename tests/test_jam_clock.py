"""The clock follower's arithmetic on synthetic MIDI clock streams, in frames (no I/O here; the same follower
behind real JACK MIDI ports is in test_jam_jack.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segue.bridge.jam.clock import ClockMap, FrameStamper, MidiClockFollower, fixed_map, parse_sig, ticks_per_bar

SR = 48000
PERIOD = 256


def as_jack(frame: float) -> float:
    """What the jam sees of a tick at `frame` through rtmidi's JACK input: the start of its 256-frame cycle,
    plus the half period the stamper adds."""
    return math.floor(frame / PERIOD) * PERIOD + PERIOD / 2


def tick_frames(bpms, t0: float = 10_000.0) -> np.ndarray:
    """Frames of consecutive ticks, one tempo (quarter notes per minute) per tick interval."""
    fpt = 60.0 * SR / (24 * np.asarray(bpms, dtype=np.float64))
    return t0 + np.concatenate([[0.0], np.cumsum(fpt)])


def run(follower, frames, jitter=None):
    follower.feed(frames[0] - 500, "start")
    for k, f in enumerate(frames):
        follower.feed(as_jack(f + (jitter[k] if jitter is not None else 0.0)), "clock")


@pytest.mark.parametrize("bpm", [90.0, 120.0, 174.0, 133.0])
def test_steady_clock_tempo_within_half_percent_after_one_bar_and_bar_lines_exact(bpm):
    frames = tick_frames([bpm] * 96)  # one 4/4 bar of ticks: 97 ticks, the 97th is bar 1's line
    f = MidiClockFollower(SR)
    run(f, frames[:97])
    m = f.map
    assert m.running and m.state == "playing"
    assert abs(m.bpm - bpm) / bpm < 0.005
    assert f.next_tick == 97
    # Bar 1's line (tick 96) within 1 ms (48 frames); bar 2's line, predicted a whole bar ahead from one
    # bar of 256-frame-quantised ticks, within 2 ms (the mixer re-reads the map every block, so launches
    # use predictions less than a beat ahead).
    assert abs(m.frame_of_bar(1) - frames[96]) < 48
    assert abs(m.frame_of_bar(2) - (frames[96] + 96 * 60.0 * SR / (24 * bpm))) < 96
    assert m.bar_beat(frames[96] + 60)[0] == 1 and m.bar_beat(frames[96] - 60)[0] == 0


def test_jittered_clock():
    rng = np.random.default_rng(3)
    frames = tick_frames([120.0] * 192)
    f = MidiClockFollower(SR)
    run(f, frames, jitter=rng.uniform(-96, 96, len(frames)))  # +-2 ms of sender jitter
    assert abs(f.map.bpm - 120.0) / 120.0 < 0.005
    assert abs(f.map.frame_of_bar(2) - frames[192]) < 48
    assert abs(f.map.frame_of_bar(3) - (frames[192] + 96 * 1000.0)) < 96


def test_tick_a_whole_number_of_periods_is_the_known_limit():
    """93.75 BPM at 256-frame periods: every tick lands at the same place in its cycle, so the half-period
    guess is off by a constant up to half a period (live.md saw +60 frames). The tempo is still exact."""
    frames = tick_frames([93.75] * 96)
    f = MidiClockFollower(SR)
    run(f, frames)
    assert abs(f.map.bpm - 93.75) / 93.75 < 0.001
    assert abs(f.map.frame_of_bar(1) - frames[96]) <= PERIOD / 2


def test_outlier_ticks_from_a_stall_are_rejected():
    frames = tick_frames([120.0] * 192)
    late = frames.copy()
    late[150:154] += 2400  # four ticks delivered 50 ms late in a burst (a stalled process)
    f = MidiClockFollower(SR)
    run(f, late[:170])
    assert abs(f.map.bpm - 120.0) / 120.0 < 0.005
    assert abs(f.map.frame_at_tick(169) - frames[169]) < 48


def test_drifting_clock_is_followed():
    bpms = np.linspace(118.0, 124.0, 24 * 4 * 8)  # a band speeding up over 8 bars
    frames = tick_frames(bpms)
    f = MidiClockFollower(SR)
    run(f, frames)
    assert abs(f.map.bpm - bpms[-1]) / bpms[-1] < 0.005
    assert abs(f.map.frame_at_tick(len(frames) - 1) - frames[-1]) < 48


def test_tempo_change_settles_within_a_bar():
    frames = tick_frames([120.0] * 192 + [140.0] * 96)
    f = MidiClockFollower(SR)
    run(f, frames)
    assert abs(f.map.bpm - 140.0) / 140.0 < 0.005
    assert abs(f.map.frame_of_bar(3) - frames[288]) < 48


def test_stop_freezes_position_and_start_restarts_at_bar_zero():
    frames = tick_frames([120.0] * 150)
    f = MidiClockFollower(SR)
    run(f, frames[:100])
    f.feed(frames[100] - 10, "stop")
    assert not f.map.running and f.map.state == "stopped"
    assert f.map.anchor_tick == 99  # frozen where it stopped
    for fr in frames[100:120]:  # ticks while stopped update tempo only
        f.feed(as_jack(fr), "clock")
    assert f.next_tick == 100 and not f.map.running
    f.feed(frames[120] - 10, "start")
    assert not f.map.running and f.map.state == "waiting"
    f.feed(as_jack(frames[120]), "clock")
    m = f.map
    assert m.running and m.anchor_tick == 0
    assert abs(m.frame_of_bar(0) - frames[120]) < PERIOD  # one tick: quantised, the tempo is the prior
    assert abs(m.bpm - 120.0) / 120 < 0.005


def test_continue_and_song_position_jumps():
    frames = tick_frames([120.0] * 300)
    f = MidiClockFollower(SR)
    run(f, frames[:50])
    f.feed(frames[50] - 10, "stop")
    f.feed(frames[50] - 5, "songpos", 32)  # 32 sixteenths = bar 2 in 4/4
    f.feed(frames[50] - 1, "continue")
    for fr in frames[50:150]:
        f.feed(as_jack(fr), "clock")
    m = f.map
    assert m.anchor_tick == 192 + 99
    assert abs(m.frame_of_bar(2) - frames[50]) < 48  # the first tick after Continue is bar 2's line
    # A jump while running (a DAW's loop): position moves, tempo holds.
    f.feed(frames[150] - 3, "songpos", 0)
    for fr in frames[150:200]:
        f.feed(as_jack(fr), "clock")
    assert abs(f.map.frame_of_bar(0) - frames[150]) < 48
    assert abs(f.map.bpm - 120.0) / 120 < 0.005


def test_lost_clock_counts_as_stopped():
    frames = tick_frames([120.0] * 100)
    f = MidiClockFollower(SR)
    run(f, frames)
    f.check(frames[-1] + 2000)
    assert f.map.running
    f.check(frames[-1] + 9000)  # eight tick periods without a tick
    assert not f.map.running and f.map.state == "lost"


def test_odd_meter_bars():
    assert ticks_per_bar("7/8") == 84 and ticks_per_bar("4/4") == 96
    frames = tick_frames([120.0] * 200)
    f = MidiClockFollower(SR, sig="7/8")
    run(f, frames)
    assert abs(f.map.frame_of_bar(2) - frames[168]) < 48
    with pytest.raises(ValueError, match="N/D"):
        parse_sig("four")
    with pytest.raises(ValueError, match="power of two"):
        parse_sig("4/5")


def test_fixed_map_and_bar_beat():
    m = fixed_map(120.0, SR, "4/4")
    assert m.frames_per_bar == 96000 and m.frame_of_bar(3) == 288000
    assert m.bar_beat(96000 + 36000) == (1, 1.5)
    with pytest.raises(ValueError, match="20-400"):
        fixed_map(10.0, SR)


def test_frame_stamper_interpolates_between_callback_marks():
    s = FrameStamper()
    assert s.to_frame(1.0) is None
    s.mark(1.0, 0, 256)
    s.mark(1.0 + 256 / SR, 256, 256)
    assert s.to_frame(1.0 + 100 / SR) == pytest.approx(100 + 128)
    assert s.to_frame(2.0) is None  # newer than the last callback: ask again later
    assert s.to_frame(0.5) == 128  # older than every mark: clamped
    assert isinstance(fixed_map(100, SR), ClockMap)


@pytest.mark.parametrize("name", ["steady_jitter", "drift"])
def test_recorded_jack_streams(name):
    """Streams recorded through a real JACK MIDI port by tests/live/record_clock.py (120 BPM with +-1 ms
    sender jitter; a drift from 119 to 121 BPM over 4 bars), replayed: the tempo is within 0.5 % from one
    bar on and every bar line lands within 1 ms, in the right bar. (A steep 7 % ramp over 4 bars is beyond
    this: the line through the last bar then sits ~2-5 ms off; see test_tempo_change_settles_within_a_bar.)"""
    import json
    from pathlib import Path

    stream = next(s for s in json.loads((Path(__file__).parent / "live" / "clock_streams.json").read_text())
                  if s["name"] == name)
    truth = np.asarray(stream["truth"])
    f = MidiClockFollower(stream["sr"])
    errors = []
    for frame, kind, value in stream["seen"]:
        f.feed(frame, kind, value)
        if kind == "clock" and f.running:
            k = int(f.next_tick - 1)
            if k >= 96:
                true_bpm = 60.0 * SR / (24 * (truth[k] - truth[k - 1]))
                assert abs(f.map.bpm - true_bpm) / true_bpm < 0.005, (k, f.map.bpm, true_bpm)
            if k >= 96 and k % 96 == 0:  # a bar line just arrived: where does the map put it?
                errors.append(f.map.frame_of_bar(k // 96) - truth[k])
                assert f.map.bar_beat(truth[k] + 60)[0] == k // 96
    assert len(errors) == 4 and max(abs(e) for e in errors) < 48, errors


def _steady(f, t0: float, ticks: int, fpt: float = 1000.0, every: int = PERIOD) -> float:
    """`ticks` clock ticks from frame t0, with the control loop's check() every period, as Jam._step does."""
    fr = t0
    for k in range(ticks):
        tick = t0 + k * fpt
        while fr + every < tick:
            fr += every
            f.check(fr)
        f.feed(tick, "clock")
    return t0 + ticks * fpt


@pytest.mark.parametrize("when", ["before Start", "while running", "after a stall"])
def test_a_burst_of_owed_ticks_never_poisons_the_tempo(when):
    """A device that stalls and then sends the ticks it owes at once (or ticks buffered before the jam read
    its port): the burst fitted 24,000 BPM, the clock was 'lost' within a frame of every tick, and only a
    restart of the jam brought it back. The tempo stays the band's and Start works."""
    f = MidiClockFollower(SR)
    t = 0.0
    if when != "before Start":
        f.feed(0.0, "start")
        t = _steady(f, 0.0, 200)
    if when == "after a stall":
        t += SR                                   # a second of silence: lost, as it should be
        f.check(t)
        assert f.map.state == "lost"
    for k in range(48):                           # 48 owed ticks within 240 frames
        f.feed(t + 5.0 * k, "clock")
    assert f.map is None or abs(f.map.bpm - 120.0) < 0.6, f.map
    t = _steady(f, t + 1000.0, 4 * 96)            # four bars of steady clock
    if when == "while running":
        assert f.map.running and abs(f.map.bpm - 120.0) < 0.6
    f.feed(t + 100.0, "stop")
    f.feed(t + 20_000.0, "start")
    _steady(f, t + 24_000.0, 2 * 96)
    m = f.map
    assert m.running and m.state == "playing" and abs(m.bpm - 120.0) < 0.6, (m.state, m.bpm)
    assert abs(m.frame_of_bar(1) - (t + 24_000.0 + 96_000.0)) < 48


def test_start_counts_silence_from_the_start_not_from_the_last_tick_before_stop():
    """After Stop, the next Start was declared 'lost' before its first tick: the silence was counted from
    the last tick before Stop."""
    f = MidiClockFollower(SR)
    f.feed(0.0, "start")
    t = _steady(f, 0.0, 96)
    f.feed(t, "stop")
    f.feed(t + 100_000.0, "start")
    f.check(t + 104_000.0)                        # 4000 frames (83 ms) after Start, no tick yet
    assert f.running and f.map.state == "waiting"
