"""Launch rule, ring buffer, mixer and trigger mapping (pure parts; the real paths are in test_jam_jack.py)."""

from __future__ import annotations

import numpy as np
import pytest

from segue.bridge.jam.clock import fixed_map
from segue.bridge.jam.ringbuffer import RingBuffer, last_bars
from segue.bridge.jam.scheduler import Clip, Mixer, launch_bar, start_frame
from segue.bridge.jam.triggers import Action, Binding, TriggerMap, key_action, osc_action

SR = 48000
M120 = fixed_map(120.0, SR)  # 96000 frames per bar


def test_launch_bar_is_the_first_bar_line_at_or_after_ready_never_mid_bar():
    assert launch_bar(M120, 0) == 0
    assert launch_bar(M120, 1) == 1
    assert launch_bar(M120, 96000) == 1
    assert launch_bar(M120, 96001) == 2
    assert launch_bar(M120, 96001, quantize=2) == 2
    assert launch_bar(M120, 192001, quantize=2) == 4
    assert launch_bar(M120, 100, quantize=4) == 4
    m = fixed_map(93.0, SR, "7/8")
    b = launch_bar(m, 123456)
    assert start_frame(m, b) >= 123456 > start_frame(m, b - 1)
    with pytest.raises(ValueError):
        launch_bar(M120, 0, quantize=0)


def test_ring_buffer_wraps_and_refuses_what_it_does_not_hold():
    r = RingBuffer(1000, 2)
    x = np.arange(2600, dtype=np.float32).reshape(1300, 2)
    for k in range(0, 1300, 256):
        r.write(x[k:k + 256], k)
    assert r.start == 300 and r.end == 1300
    got = r.read(900, 1200)
    assert got.shape == (2, 300)
    np.testing.assert_array_equal(got, x[900:1200].T)
    with pytest.raises(ValueError, match="not in the ring buffer"):
        r.read(100, 200)
    with pytest.raises(ValueError, match="not in the ring buffer"):
        r.read(1200, 1400)


def test_last_bars_cuts_complete_bars_on_the_grid():
    assert last_bars(M120, 4.25 * 96000, 2) == (2, 192000, 384000)
    assert last_bars(M120, 4.25 * 96000, 8, held_from=100000) == (2, 192000, 384000)  # fewer bars held
    with pytest.raises(ValueError, match="complete bar"):
        last_bars(M120, 0.5 * 96000, 1, held_from=10)


def render(mixer, cmap, start, stop, block=256):
    out = []
    for f in range(start, stop, block):
        buf = np.zeros((block, 2), np.float32)
        mixer.render(buf, f, cmap)
        out.append(buf)
    return np.concatenate(out)


def test_mixer_starts_on_the_bar_line_sample_exact_with_fades():
    clip = (np.random.default_rng(0).standard_normal((48000, 2)) * 0.1).astype(np.float32)
    mx = Mixer(2, fade=96)
    mx.submit(Clip(clip, id="a"))
    out = render(mx, M120, 1000, 1000 + 256 * 800)  # ready at frame 1000: launches on bar 1 (96000)
    s = 96000 - 1000
    assert not out[:s].any()
    np.testing.assert_array_equal(out[s + 96:s + 48000 - 96], clip[96:-96])  # the engine's samples
    assert np.all(np.abs(out[s:s + 96]) <= np.abs(clip[:96]) + 1e-7)  # declick fade-in
    assert not out[s + 48000:].any()  # exactly the clip's length
    assert mx.launched[-1]["bar"] == 1 and mx.launched[-1]["start"] == 96000


def test_mixer_late_clip_waits_for_the_next_bar_and_stop_fades_out():
    clip = np.ones((96000 * 2, 1), np.float32)
    mx = Mixer(2, fade=48, late_frames=480)
    c = Clip(clip, id="late", bar=1)  # meant for bar 1, but the callback sees it only at frame 97000
    mx.submit(c)
    render(mx, M120, 97000 - 256, 97000)
    assert not mx.launched and c.bar == 2  # never mid-bar: waits for bar 2
    out = render(mx, M120, 97000, 192512)
    assert mx.launched[-1]["bar"] == 2 and mx.launched[-1]["start"] == 192000
    assert not out[:192000 - 97000].any() and out[192000 - 97000 + 48:].all()
    mx.stop()
    out = render(mx, M120, 200000, 200000 + 1024)
    assert out[0, 0] < 1.0 and not out[100:].any() and not mx.voices


def test_mixer_clock_stop_fades_out_and_requeues():
    clip = np.ones((96000, 2), np.float32)
    mx = Mixer(2, fade=48)
    mx.submit(Clip(clip, id="x", loop=True))
    render(mx, M120, 95000, 100000)
    assert len(mx.voices) == 1
    mx.submit(Clip(clip, id="y"))
    stopped = fixed_map(120.0, SR).__class__(**{**M120.__dict__, "running": False, "state": "stopped"})
    out = render(mx, stopped, 100096, 100096 + 1024)
    assert not out[200:].any() and not mx.voices and mx.queued[0].bar is None


def test_trigger_map_file_learn_and_actions(tmp_path):
    mido = pytest.importorskip("mido", reason="mido (the live extra) is not installed")

    path = tmp_path / "triggers.toml"
    tm = TriggerMap.load(path)  # missing file: defaults
    assert tm.handle(mido.Message("note_on", note=36, velocity=100))[1].name == "continue"
    assert tm.handle(mido.Message("note_on", note=36, velocity=0)) is None  # a note-off in disguise
    assert tm.handle(mido.Message("control_change", control=20, value=127))[1] == Action("bars", bars=16.0)
    tm.learn(Action("stop"))
    got = tm.handle(mido.Message("control_change", channel=2, control=64, value=127))
    assert got[0] == "learned" and got[1] == Binding("cc", 64, "stop", 3)
    again = TriggerMap.load(path)  # learn saved the file
    assert again.handle(mido.Message("control_change", channel=2, control=64, value=127))[1].name == "stop"
    assert again.handle(mido.Message("control_change", channel=5, control=64, value=127)) is None
    path.write_text('[[trigger]]\nnote = 60\naction = "continue"\ncontext = 2\nbars = 1\n')
    act = TriggerMap.load(path).handle(mido.Message("note_on", note=60, velocity=1))[1]
    assert act == Action("continue", 2, 1.0)
    path.write_text('[[trigger]]\nnote = 60\naction = "explode"\n')
    with pytest.raises(ValueError, match="entry 1: action 'explode'"):
        TriggerMap.load(path)
    path.write_text('[[trigger]]\nnote = 60\ncc = 1\naction = "stop"\n')
    with pytest.raises(ValueError, match="exactly one of note"):
        TriggerMap.load(path)


def test_keys_and_osc_actions():
    assert key_action(" ") == Action("continue") and key_action("3") == Action("bars", bars=3.0)
    assert key_action("q") == Action("quit") and key_action("z") is None
    assert osc_action("/jam/continue", [2, 1.5]) == Action("continue", 2, 1.5)
    assert osc_action("/jam/learn", ["stop"]) == Action("learn:stop")
    with pytest.raises(ValueError, match="unknown jam address"):
        osc_action("/jam/dance", [])
    for other in ("/foo/continue", "/jam/status/stop", "/continue"):   # were taken as /jam/<last part>
        with pytest.raises(ValueError, match="addresses are /jam/ACTION"):
            osc_action(other, [])
    with pytest.raises(ValueError, match=r"\(0, 64\]"):
        osc_action("/jam/bars", [0])


def test_bar_lines_recorded_half_a_bar_later_are_used_for_the_cut():
    from segue.bridge.jam.ringbuffer import BarLines

    lines = BarLines()
    old = fixed_map(120.0, SR)  # the map while bars 0-3 were played
    for f in range(0, int(3.6 * 96000), 4800):
        lines.update(old, f)
    assert sorted(lines.frames)[-4:] == [0, 1, 2, 3]  # each recorded half a bar after its line
    # Later the map has drifted a little (a 0.1 % tempo error): the recorded lines keep the cut on the grid.
    new = old.__class__(**{**old.__dict__, "frames_per_tick": 1001.0, "anchor_frame": 336000.0,
                           "anchor_tick": 336.0})
    assert last_bars(new, 340000, 2, lines=lines) == (1, 96000, 288000)
    assert last_bars(new, 340000, 2)[1:] != (96000, 288000)  # without the history the cut would move
    stopped = old.__class__(**{**old.__dict__, "running": False})
    lines.update(stopped, 0)
    assert not lines.frames


def test_mixer_offset_starts_before_the_bar_line_and_quantize_waits_for_the_grid():
    clip = np.ones((4800, 2), np.float32)
    mx = Mixer(2, fade=0, offset=240)  # 5 ms of output latency made up
    mx.submit(Clip(clip, id="o", quantize=2))
    out = render(mx, M120, 1024, 1024 + 256 * 800)  # ready in bar 0: the 2-bar grid's next line is bar 2
    assert mx.launched[-1]["bar"] == 2 and mx.launched[-1]["start"] == 192000 - 240
    s = 192000 - 240 - 1024
    assert not out[:s].any() and out[s:s + 4800].all() and not out[s + 4800:].any()
