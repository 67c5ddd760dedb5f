"""The REAPER scripts under Lua 5.4 against the stand-in `reaper` table, with a fake `segue` client.

Each test builds a fake project, runs one action (tests/reaper/run_case.lua),
and checks what landed on the timeline, the undo block, the dialogs, and the
exact command line the script gave the client. Expected times are computed
here from the tempo map by hand, independently of the Lua code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "reaper"))
import reaper_harness as h  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("lua5.4") is None, reason="lua5.4 is not installed (apt-get install lua5.4)")

SRC_SR = 44100
PROJECT_SR = 48000
# 4 bars of 4/4 at 120 BPM (8 s), then 87.5 BPM in 7/8: a bar is 3.5 quarters = 2.4 s.
ODD_TEMPO = [{"time": 0.0, "bpm": 120.0, "num": 4, "den": 4}, {"time": 8.0, "bpm": 87.5, "num": 7, "den": 8}]
BAR_78 = 3.5 * 60 / 87.5
MUTATIONS = {"AddMediaItemToTrack", "SplitMediaItem", "AddTakeToMediaItem", "SetMediaItemTake_Source",
             "SetMediaItemInfo_Value", "SetMediaItemTakeInfo_Value", "SetActiveTake",
             "GetSetMediaItemTakeInfo_String(set)"}


@pytest.fixture
def env(tmp_path):
    exe = h.fake_client(tmp_path)
    log = tmp_path / "log"

    class Env:
        path = tmp_path
        ext = {"exe": str(exe)}
        src = h.write_wav(tmp_path / "drums.wav", SRC_SR, 30.0)

        def run(self, script, project, mode="ok", ext=None, **kw):
            return h.run_case(tmp_path, script, project, {**self.ext, **(ext or {})},
                              env={"FAKE_SEGUE_LOG": str(log), "FAKE_SEGUE_MODE": mode}, **kw)

        def calls(self, sub=None):
            return [c for c in h.calls(log) if sub is None or c[0] == sub]

    return Env()


def project(src, sel=(12.0, 14.5), item=None, tempo=ODD_TEMPO, srate_use=True, device_srate=44100, tracks=None):
    item = item or {"position": 2.0, "length": 18.0, "selected": True, "takes": [{"file": str(src), "startoffs": 1.5}]}
    return {"srate": PROJECT_SR, "srate_use": srate_use, "device_srate": device_srate,
            "time_selection": list(sel) if sel else None, "tempo": tempo,
            "tracks": tracks or [{"name": "Drums", "selected": False, "items": [item]}]}


def assert_clean(rep):
    assert rep["errors"] == [], rep["errors"]
    assert not rep["timed_out"]
    assert rep["undo_depth"] == 0 and rep["refresh_depth"] == 0
    assert "Segue" not in rep["extstate"] or rep["extstate"]["Segue"].get("running", "") == ""


def assert_one_undo_block(rep, desc_part):
    assert len(rep["undo"]) == 1, rep["undo"]
    blk = rep["undo"][0]
    assert desc_part in blk["desc"] and blk["flags"] == 4 and not blk["open"]
    outside = [op["fn"] for op in rep["ops"] if not op["in_undo"] and op["fn"] in MUTATIONS]
    assert outside == [], f"timeline edits outside the undo block: {outside}"


def approx(a, b, tol=1e-9):
    return abs(a - b) <= tol


# ---------------------------------------------------------------- static checks

def test_every_script_compiles_with_luac():
    luac = shutil.which("luac5.4")
    assert luac, "luac5.4 missing (Debian package lua5.4)"
    scripts = sorted(h.SCRIPTS.glob("*.lua"))
    assert len(scripts) == 8
    for s in scripts:
        proc = subprocess.run([luac, "-p", str(s)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_scripts_use_no_accidental_globals():
    """Globals read or written anywhere: only Lua's standard library, reaper and gfx."""
    allowed = {"reaper", "gfx", "debug", "dofile", "pcall", "error", "io", "os", "math", "string", "table",
               "ipairs", "pairs", "tonumber", "tostring", "type", "select", "next"}
    for s in sorted(h.SCRIPTS.glob("*.lua")):
        listing = subprocess.run(["luac5.4", "-l", "-p", str(s)], capture_output=True, text=True, check=True).stdout
        names = set(re.findall(r'[GS]ETTABUP.*_ENV "(\w+)"', listing))
        assert names and names <= allowed, f"{s.name}: {sorted(names - allowed)}"


def test_luac_rejects_a_broken_script(tmp_path):
    bad = tmp_path / "bad.lua"
    bad.write_text("local x = = 1\n")
    assert subprocess.run(["luac5.4", "-p", str(bad)], capture_output=True).returncode != 0


def test_every_action_has_reapack_headers():
    for name in h.SCRIPT.values():
        text = (h.SCRIPTS / name).read_text()
        for tag in ("@description", "@author", "@version", "@about"):
            assert f"-- {tag}" in text, f"{name} lacks {tag}"


# ---------------------------------------------------------------- inpaint

def test_inpaint_take_mode_odd_tempo_and_project_rate(env):
    rep = env.run("inpaint", project(env.src))
    assert_clean(rep)
    assert rep["messages"] == []
    # the request: source seconds, tempo and signature at the selection start, project rate, bar line
    (argv,) = env.calls("inpaint")
    assert argv[1] == str(env.src)
    assert float(argv[2]) == pytest.approx(1.5 + (12.0 - 2.0), abs=1e-9)
    assert h.argv_options(argv)["timeout"] == "600"
    assert float(argv[3]) == pytest.approx(1.5 + (14.5 - 2.0), abs=1e-9)
    opts = h.argv_options(argv)
    assert float(opts["bpm"]) == 87.5 and opts["sig"] == "7/8" and opts["sr"] == "48000"
    # bar lines after 8.0 s every 2.4 s: 8.0, 10.4, 12.8 -> 10.4 is at/before 12.0
    assert float(opts["downbeat"]) == pytest.approx(1.5 + (10.4 - 2.0), abs=1e-9)
    assert opts["status-file"].startswith(str(env.path / "resource" / "Data" / "Segue"))
    assert opts["id"].startswith("reaper-inpaint-")
    # the timeline: split at both edges, the result a new active take of the middle piece
    left, mid, right = h.items(rep)
    assert (left["position"], left["length"]) == (2.0, 10.0)
    assert approx(mid["position"], 12.0) and approx(mid["length"], 2.5)
    assert approx(right["position"], 14.5) and approx(right["length"], 5.5)
    assert right["takes"][0]["startoffs"] == pytest.approx(1.5 + 12.5)
    assert [t["file"] for t in mid["takes"]][0] == str(env.src)
    new = mid["takes"][mid["active"] - 1]
    assert mid["active"] == 2 and new["file"].endswith("-v0.wav") and new["startoffs"] == 0
    assert new["source_sr"] == PROJECT_SR and new["source_frames"] == round(2.5 * PROJECT_SR)
    assert mid["takes"][0]["startoffs"] == pytest.approx(1.5 + 10.0)  # original take, untouched audio
    assert_one_undo_block(rep, "inpaint")
    assert rep["gfx"]["opened"] and rep["gfx"]["closed"]


def test_inpaint_item_mode_leaves_the_original_item_alone(env):
    rep = env.run("inpaint", project(env.src), ext={"landing": "item"})
    assert_clean(rep)
    orig, new = sorted(h.items(rep), key=lambda i: i["uid"])
    assert (orig["position"], orig["length"], len(orig["takes"])) == (2.0, 18.0, 1)
    assert orig["takes"][0]["file"] == str(env.src) and orig["takes"][0]["startoffs"] == 1.5
    assert approx(new["position"], 12.0) and approx(new["length"], 2.5)
    assert len(new["takes"]) == 1 and new["takes"][0]["source_frames"] == round(2.5 * PROJECT_SR)
    assert "SplitMediaItem" not in [op["fn"] for op in rep["ops"]]
    assert_one_undo_block(rep, "inpaint")


def test_inpaint_uses_the_device_rate_when_the_project_rate_is_not_forced(env):
    rep = env.run("inpaint", project(env.src, srate_use=False, device_srate=96000))
    assert_clean(rep)
    assert h.argv_options(env.calls("inpaint")[0])["sr"] == "96000"
    mid = h.items(rep)[1]
    assert mid["takes"][1]["source_frames"] == round(2.5 * 96000)


def test_inpaint_clips_the_selection_to_the_item(env):
    rep = env.run("inpaint", project(env.src, sel=(18.0, 25.0)))
    assert_clean(rep)
    argv = env.calls("inpaint")[0]
    assert float(argv[2]) == pytest.approx(1.5 + 16.0) and float(argv[3]) == pytest.approx(1.5 + 18.0)
    left, mid = h.items(rep)
    assert approx(mid["position"], 18.0) and approx(mid["length"], 2.0)
    assert mid["takes"][1]["source_frames"] == 2 * PROJECT_SR


def test_inpaint_every_selected_track_in_one_undo_step(env):
    other = h.write_wav(env.path / "bass.wav", 48000, 20.0, channels=2)
    tracks = [
        {"name": "Drums", "selected": True,
         "items": [{"position": 2.0, "length": 18.0, "takes": [{"file": str(env.src), "startoffs": 1.5}]}]},
        {"name": "Bass", "selected": True,
         "items": [{"position": 10.0, "length": 8.0, "takes": [{"file": str(other), "startoffs": 0.0}]}]},
        {"name": "Keys", "selected": False,
         "items": [{"position": 10.0, "length": 8.0, "takes": [{"file": str(other), "startoffs": 0.0}]}]},
    ]
    rep = env.run("inpaint", project(env.src, tracks=tracks))
    assert_clean(rep)
    reqs = env.calls("inpaint")
    assert sorted(c[1] for c in reqs) == sorted([str(env.src), str(other)])
    bass = next(c for c in reqs if c[1] == str(other))
    assert float(bass[2]) == pytest.approx(2.0) and float(bass[3]) == pytest.approx(4.5)
    assert float(h.argv_options(bass)["downbeat"]) == pytest.approx(0.4)  # 10.4 - 10.0
    for t in (1, 2):
        assert len(h.items(rep, t)) == 3 and len(h.items(rep, t)[1]["takes"]) == 2
    assert len(h.items(rep, 3)) == 1
    assert_one_undo_block(rep, "inpaint")


def test_an_earlier_result_over_the_original_is_not_taken_as_the_source(env):
    """Item-mode landing leaves a 2.5 s result item over the original. Inpainting the same selection again
    by its track took both: the result item (no context around it) made the whole action fail with "the
    file is shorter than the context needed". One item per track now goes: the one covering most of the
    selection, then the longest (the original), and the console says so."""
    prev = h.write_wav(env.path / "drums-inpaint-prev-v1.wav", PROJECT_SR, 2.5)
    tracks = [{"name": "Drums", "selected": True,
               "items": [{"position": 2.0, "length": 18.0, "takes": [{"file": str(env.src), "startoffs": 1.5}]},
                         {"position": 12.0, "length": 2.5, "takes": [{"file": str(prev), "startoffs": 0.0}]}]}]
    rep = env.run("inpaint", project(env.src, tracks=tracks))
    assert_clean(rep)
    (req,) = env.calls("inpaint")
    assert req[1] == str(env.src) and float(req[2]) == pytest.approx(11.5)
    assert "2 overlapping items lie under the selection; Segue uses" in rep["console"]
    assert "item at 2.000 s" in rep["console"]


def test_inpaint_downbeat_moves_into_the_file_when_the_bar_line_is_before_it(env):
    item = {"position": 11.0, "length": 6.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 0.2}]}
    rep = env.run("inpaint", project(env.src, item=item))
    assert_clean(rep)
    # bar line 10.4 maps to 0.2 + (10.4 - 11.0) = -0.4 s: one 2.4 s bar later is 2.0 s
    assert float(h.argv_options(env.calls("inpaint")[0])["downbeat"]) == pytest.approx(2.0)


def test_inpaint_downbeat_is_the_projects_next_bar_line_across_a_mid_bar_tempo_change(env):
    """120 BPM 4/4 with a tempo-only marker to 100 BPM at 10.2 s, mid-bar: the bar from 10.0 s ends at
    10.2 + 3.6 quarters at 100 BPM = 12.36 s. The file starts at 10.8 s, after the bar line at/before
    the selection (10.0 s): the next bar line was taken as 10.0 + one bar at 100 BPM (12.4 s, 40 ms
    late); it is the project's own, 12.36 s, source 0.2 + 12.36 - 11.0 = 1.56 s."""
    tempo = [{"time": 0.0, "bpm": 120.0, "num": 4, "den": 4}, {"time": 10.2, "bpm": 100.0}]
    item = {"position": 11.0, "length": 6.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 0.2}]}
    rep = env.run("inpaint", project(env.src, sel=(11.0, 12.0), item=item, tempo=tempo))
    assert_clean(rep)
    assert float(h.argv_options(env.calls("inpaint")[0])["downbeat"]) == pytest.approx(1.56, abs=1e-6)


def test_a_tempo_change_inside_a_continuation_is_said(env):
    """The item ends at 6.0 s at 120 BPM 4/4; 4 bars run to 14.0 s across the change to 87.5 BPM 7/8 at
    8.0 s. The continuation keeps the tempo at the item's end (as documented), and now says so."""
    item = {"position": 0.0, "length": 6.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 0.0}]}
    rep = env.run("continue", project(env.src, sel=None, item=item), inputs=[{"ok": True, "values": "4"}])
    assert_clean(rep)
    assert "the tempo or time signature changes within the 4 bars after the item" in rep["console"]
    assert "keeps 120 BPM 4/4" in rep["console"]
    item = dict(item, length=2.0)                          # 2.0 + 4 bars = 10.0 s: crosses 8.0 too
    rep = env.run("continue", project(env.src, sel=None, item=item,
                                      tempo=[{"time": 0.0, "bpm": 120.0, "num": 4, "den": 4}]),
                  inputs=[{"ok": True, "values": "4"}])
    assert_clean(rep)
    assert "changes within" not in rep["console"]           # one tempo: nothing to say


# ---------------------------------------------------------------- continue

def test_continue_starts_at_the_item_end_with_the_tempo_there(env):
    item = {"position": 2.0, "length": 10.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 1.5}]}
    rep = env.run("continue", project(env.src, sel=None, item=item), inputs=[{"ok": True, "values": "4"}])
    assert_clean(rep)
    (argv,) = env.calls("continue")
    assert argv[1] == str(env.src) and float(argv[2]) == pytest.approx(11.5) and float(argv[3]) == 4
    opts = h.argv_options(argv)
    assert (float(opts["bpm"]), opts["sig"], opts["sr"]) == (87.5, "7/8", "48000")
    assert float(opts["downbeat"]) == pytest.approx(1.5 + 10.4 - 2.0)
    orig, new = h.items(rep)
    assert (orig["position"], orig["length"], len(orig["takes"])) == (2.0, 10.0, 1)
    assert new["position"] == 12.0 and approx(new["length"], 4 * BAR_78)   # 9.6 s
    assert new["takes"][0]["source_frames"] == round(4 * BAR_78 * PROJECT_SR)
    assert rep["inputs_asked"][0]["defaults"] == "4"
    assert rep["extstate"]["Segue"]["bars"] == "4"
    assert_one_undo_block(rep, "continue")


def test_continue_fractional_bars_in_4_4(env):
    item = {"position": 0.0, "length": 6.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 0.0}]}
    rep = env.run("continue", project(env.src, sel=None, item=item), inputs=[{"ok": True, "values": "2.5"}])
    assert_clean(rep)
    opts = h.argv_options(env.calls("continue")[0])
    assert (float(opts["bpm"]), opts["sig"]) == (120.0, "4/4")
    new = h.items(rep)[1]
    assert new["position"] == 6.0 and approx(new["length"], 2.5 * 2.0)
    assert new["takes"][0]["source_frames"] == 5 * PROJECT_SR


def test_continue_dialog_cancelled_sends_nothing(env):
    item = {"position": 0.0, "length": 6.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 0.0}]}
    rep = env.run("continue", project(env.src, sel=None, item=item), inputs=[{"ok": False}])
    assert_clean(rep)
    assert env.calls() == [] and rep["undo"] == [] and len(h.items(rep)) == 1


# ---------------------------------------------------------------- variations

@pytest.mark.parametrize("landing,typed", [("take", "3"), ("item", "3.0")])
def test_variations_land_as_takes_of_one_item(env, landing, typed):
    rep = env.run("variations", project(env.src), ext={"landing": landing, "seed": "7"},
                  inputs=[{"ok": True, "values": typed}])
    assert_clean(rep)
    opts = h.argv_options(env.calls("inpaint")[0])
    assert opts["variations"] == "3" and opts["seed"] == "7"
    if landing == "take":
        mid = h.items(rep)[1]
        assert len(mid["takes"]) == 4 and mid["active"] == 2
        new = mid["takes"][1:]
    else:
        mid = max(h.items(rep), key=lambda i: i["uid"])
        assert len(mid["takes"]) == 3 and mid["active"] == 1
        new = mid["takes"]
    assert approx(mid["position"], 12.0) and approx(mid["length"], 2.5)
    assert [t["name"] for t in new] == [f"Segue variations seed 7 v{k}" for k in (1, 2, 3)]
    assert len({t["file"] for t in new}) == 3
    assert all(t["source_frames"] == round(2.5 * PROJECT_SR) for t in new)
    assert_one_undo_block(rep, "variations")


def test_variations_refuses_a_count_out_of_range(env):
    rep = env.run("variations", project(env.src), inputs=[{"ok": True, "values": "12"}])
    assert_clean(rep)
    assert env.calls() == [] and "at most 8" in rep["messages"][0]["msg"]


# ---------------------------------------------------------------- generate

def test_generate_on_dsp_shows_the_unsupported_error(env):
    tracks = [{"name": "Gen", "selected": True, "items": []}]
    rep = env.run("generate", project(env.src, tracks=tracks), inputs=[{"ok": True, "values": "dusty breakbeat"}])
    assert_clean(rep)
    (argv,) = env.calls("generate")
    assert float(argv[1]) == pytest.approx(2.5 / BAR_78)
    assert h.argv_options(argv)["prompt"] == "dusty breakbeat"
    assert len(rep["messages"]) == 1 and "cannot do this" in rep["messages"][0]["msg"]
    assert "neural backend" in rep["messages"][0]["msg"]
    assert rep["undo"] == [] and h.items(rep) == []


def test_generate_lands_over_the_time_selection(env):
    tracks = [{"name": "Gen", "selected": True, "items": []}]
    rep = env.run("generate", project(env.src, tracks=tracks), mode="neural", inputs=[{"ok": True, "values": "pads"}])
    assert_clean(rep)
    (item,) = h.items(rep)
    assert approx(item["position"], 12.0) and approx(item["length"], 2.5)
    assert item["takes"][0]["source_frames"] == round(2.5 * PROJECT_SR)
    assert rep["extstate"]["Segue"]["prompt"] == "pads"
    assert_one_undo_block(rep, "generate")


# ---------------------------------------------------------------- refusals and errors

def expect_message(rep, *parts):
    assert rep["errors"] == []
    assert len(rep["messages"]) == 1, rep["messages"]
    text = rep["messages"][0]["msg"]
    for p in parts:
        assert p in text, text
    assert rep["undo"] == []


def test_no_time_selection(env):
    rep = env.run("inpaint", project(env.src, sel=None))
    expect_message(rep, "time selection")
    assert env.calls() == []


def test_no_item_under_the_selection(env):
    rep = env.run("inpaint", project(env.src, sel=(25.0, 27.0)))
    expect_message(rep, "No audio item")


def test_continue_without_a_selected_item(env):
    item = {"position": 2.0, "length": 10.0, "selected": False, "takes": [{"file": str(env.src)}]}
    expect_message(env.run("continue", project(env.src, item=item)), "Select the audio item")


def test_midi_take_is_refused(env):
    item = {"position": 2.0, "length": 18.0, "selected": True, "takes": [{"midi": True}]}
    rep = env.run("inpaint", project(env.src, item=item))
    expect_message(rep, "MIDI", 'track 1 "Drums"')
    assert env.calls() == []


def test_playrate_other_than_one_is_refused(env):
    item = {"position": 2.0, "length": 18.0, "selected": True,
            "takes": [{"file": str(env.src), "startoffs": 1.5, "playrate": 1.5}]}
    for script in ("inpaint", "continue"):
        rep = env.run(script, project(env.src, item=item), inputs=[{"ok": True, "values": "4"}])
        expect_message(rep, "rate 1.5", "playrate 1.0")
    assert env.calls() == []


def test_reversed_or_section_take_is_refused(env):
    item = {"position": 2.0, "length": 18.0, "selected": True,
            "takes": [{"file": str(env.src), "startoffs": 1.5, "section": True}]}
    expect_message(env.run("inpaint", project(env.src, item=item)), "section or reversed", "Glue")


def test_item_shorter_than_the_context_needed(env):
    short = h.write_wav(env.path / "short.wav", SRC_SR, 1.0)
    item = {"position": 12.0, "length": 1.0, "selected": True, "takes": [{"file": str(short)}]}
    rep = env.run("inpaint", project(env.src, sel=(12.1, 12.9), item=item))
    expect_message(rep, "shorter than the context needed")
    item = {"position": 12.0, "length": 0.3, "selected": True, "takes": [{"file": str(short)}]}
    rep = env.run("continue", project(env.src, item=item))
    expect_message(rep, "shorter than the context needed")
    assert env.calls() == []


def test_item_extended_past_its_file_is_refused(env):
    item = {"position": 0.0, "length": 40.0, "selected": True, "loopsrc": True, "takes": [{"file": str(env.src)}]}
    expect_message(env.run("inpaint", project(env.src, sel=(31.0, 33.0), item=item)), "past the take's file")
    expect_message(env.run("continue", project(env.src, item=item)), "ends after its file")


def test_engine_not_running(env):
    rep = env.run("inpaint", project(env.src), mode="no_engine")
    expect_message(rep, "not running", "segue serve", "9137", "automatically")
    assert [c[0] for c in env.calls()] == ["ping"]


def test_engine_not_running_with_autostart_starts_it(env):
    rep = env.run("inpaint", project(env.src), mode="autostart", ext={"autostart": "1", "port": "9200"})
    assert_clean(rep)
    subs = [c[0] for c in env.calls()]
    assert subs[:2] == ["ping", "serve"] and subs[2:-1] == ["ping"] * (len(subs) - 3) and subs[-1] == "inpaint"
    serve = env.calls("serve")[0]
    assert h.argv_options(serve)["port"] == "9200" and len(env.calls("serve")) == 1
    assert len(h.items(rep)) == 3
    assert_one_undo_block(rep, "inpaint")


@pytest.mark.parametrize("code,message,shown", [
    ("insufficient_context", "needs 2.0 s of audio around the region", "Too little audio"),
    ("source_unreadable", "cannot decode /x.wav", "(source_unreadable): cannot decode"),
    ("busy", "the queue is full (16 requests)", "queue is full"),
])
def test_engine_error_replies_are_shown_with_their_message(env, code, message, shown):
    rep = env.run("inpaint", project(env.src), mode=f"error:{code}:{message}")
    expect_message(rep, shown, message)
    assert len(h.items(rep)) == 1 and len(h.items(rep)[0]["takes"]) == 1


def test_missing_client_program_is_reported(env):
    rep = env.run("inpaint", project(env.src), ext={"exe": str(env.path / "nowhere" / "segue")})
    expect_message(rep, "not found", "nowhere/segue", "Settings")
    assert env.calls() == [] and rep["exec"] == []
    # a bare program name is looked up on PATH by the OS: noticed when no status file appears
    rep = env.run("inpaint", project(env.src), ext={"exe": "segue-not-installed-here", "client_wait": "1.5"})
    expect_message(rep, "did not start", "segue-not-installed-here", "Settings")
    assert [c["argv"][1] for c in rep["exec"]] == ["ping"]


# ---------------------------------------------------------------- cancel

def test_closing_the_progress_window_cancels(env):
    rep = env.run("inpaint", project(env.src), mode="slow", events=[{"after": 1.5, "action": "close_window"}])
    assert_clean(rep)
    (req,) = env.calls("inpaint")
    (cancel,) = env.calls("cancel")
    assert cancel[1] == h.argv_options(req)["id"]
    assert rep["messages"] == [] and rep["undo"] == [] and len(h.items(rep)) == 1
    assert "cancelled" in rep["console"]


def test_cancel_action_cancels_the_running_request(env):
    rep = env.run("inpaint", project(env.src), mode="slow", events=[{"after": 1.5, "action": "run_script", "script": "cancel"}])
    assert_clean(rep)
    (req,) = env.calls("inpaint")
    (cancel,) = env.calls("cancel")
    assert cancel[1] == h.argv_options(req)["id"]
    assert rep["undo"] == [] and len(h.items(rep)) == 1 and rep["messages"] == []


def test_cancel_action_while_waiting_for_an_auto_started_engine(env):
    rep = env.run("inpaint", project(env.src), mode="no_engine", ext={"autostart": "1"},
                  events=[{"after": 1.5, "action": "run_script", "script": "cancel"}])
    assert_clean(rep)
    assert [c[0] for c in env.calls()][:2] == ["ping", "serve"] and env.calls("inpaint") == []
    assert env.calls("cancel") == []   # nothing was sent to the engine, so nothing to cancel there
    assert rep["messages"] == [] and "cancelled before the request was sent" in rep["console"]


def test_escape_key_cancels(env):
    rep = env.run("continue", project(env.src, sel=None), mode="slow", inputs=[{"ok": True, "values": "4"}],
                  events=[{"after": 1.0, "action": "escape"}])
    assert_clean(rep)
    assert len(env.calls("cancel")) == 1 and rep["undo"] == []


def test_cancel_action_with_nothing_running(env):
    rep = env.run("cancel", project(env.src))
    expect_message(rep, "No Segue request is running")
    assert env.calls() == []


# ---------------------------------------------------------------- settings

def test_settings_are_saved_and_used(env):
    values = "\n".join([str(env.ext["exe"]), "localhost", "9555", "dsp", "", "", "", "", "item", "y",
                        str(env.path / "renders"), "2", "5", "42"])
    rep = env.run("settings", project(env.src), inputs=[{"ok": True, "values": values}])
    assert rep["errors"] == [] and rep["messages"] == []
    saved = rep["extstate"]["Segue"]
    assert (saved["host"], saved["port"], saved["backend_inpaint"], saved["landing"], saved["autostart"],
            saved["seed"]) == ("localhost", "9555", "dsp", "item", "1", "42")
    assert "separator=\n" in rep["inputs_asked"][0]["captions"]
    # the next action uses them
    rep = env.run("inpaint", project(env.src), ext=saved)
    assert_clean(rep)
    opts = h.argv_options(env.calls("inpaint")[0])
    assert (opts["port"], opts["backend"], opts["out"], opts["seed"]) == ("9555", "dsp", str(env.path / "renders"), "42")
    assert len(h.items(rep)) == 2  # item mode


def test_settings_with_a_bad_port_are_not_saved(env):
    values = "\n".join(["segue", "127.0.0.1", "99999", "", "", "", "", "", "take", "n", "", "4", "4", ""])
    rep = env.run("settings", project(env.src), inputs=[{"ok": True, "values": values}])
    assert rep["errors"] == []
    assert "port" in rep["messages"][0]["msg"]
    assert "port" not in rep["extstate"].get("Segue", {})


# ---------------------------------------------------------------- ReaPack index

def test_reapack_index_is_valid_and_lists_every_script():
    import xml.etree.ElementTree as ET
    from urllib.parse import unquote

    root = ET.parse(h.SCRIPTS / "index.xml").getroot()
    assert root.tag == "index" and root.get("version") == "1"
    (pkg,) = root.findall("./category/reapack")
    assert pkg.get("type") == "script"
    (version,) = pkg.findall("version")
    sources = version.findall("source")
    by_file = {s.get("file"): s for s in sources}
    actions = sorted(p.name for p in h.SCRIPTS.glob("*.lua") if p.name != "segue_lib.lua")
    assert sorted(f for f, s in by_file.items() if s.get("main") == "main") == actions
    assert sorted(h.SCRIPT.values()) == actions
    assert "segue_lib.lua" in by_file and by_file["segue_lib.lua"].get("main") is None
    for f, s in by_file.items():
        url = s.text.strip()
        assert url.startswith("https://") and " " not in url and unquote(url).endswith("/reaper_scripts/" + f)
    for name in actions:
        assert f"-- @version {version.get('name')}" in (h.SCRIPTS / name).read_text()


def test_reapack_index_is_up_to_date():
    proc = subprocess.run([sys.executable, str(h.SCRIPTS / "make_index.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- razor edits (several regions, one request)

def test_razor_areas_on_one_track_go_as_one_request_with_regions(env):
    # two razor areas on the media lane, one on an envelope lane (ignored); no time selection
    tracks = [{"name": "Drums", "selected": False,
               "razor": '12.0 12.5 "" 13.0 14.0 "" 12.2 12.4 "{ENV-GUID}"',
               "items": [{"position": 2.0, "length": 18.0, "takes": [{"file": str(env.src), "startoffs": 1.5}]}]}]
    rep = env.run("inpaint", project(env.src, sel=None, tracks=tracks))
    assert_clean(rep)
    (argv,) = env.calls("inpaint")
    assert float(argv[2]) == pytest.approx(11.5) and float(argv[3]) == pytest.approx(13.5)   # the whole span
    regions = [tuple(float(x) for x in r.split(":")) for r in h.argv_options(argv)["regions"].split(",")]
    assert regions == [pytest.approx((11.5, 12.0)), pytest.approx((12.5, 13.5))]             # file seconds
    left, mid, right = h.items(rep)
    assert approx(mid["position"], 12.0) and approx(mid["length"], 2.0)                       # one item over the span
    assert mid["takes"][1]["source_frames"] == 2 * PROJECT_SR
    assert "razor" in rep["undo"][0]["desc"]
    assert_one_undo_block(rep, "inpaint")


def test_one_razor_area_is_a_plain_inpaint_and_areas_across_items_are_refused(env):
    tracks = [{"name": "Drums", "selected": False, "razor": '12.0 12.5 ""',
               "items": [{"position": 2.0, "length": 18.0, "takes": [{"file": str(env.src), "startoffs": 1.5}]}]}]
    rep = env.run("inpaint", project(env.src, sel=None, tracks=tracks))
    assert_clean(rep)
    assert "regions" not in h.argv_options(env.calls("inpaint")[0])
    tracks = [{"name": "Drums", "selected": False, "razor": '3.0 3.5 "" 12.0 12.5 ""',
               "items": [{"position": 2.0, "length": 5.0, "takes": [{"file": str(env.src), "startoffs": 0.0}]},
                         {"position": 10.0, "length": 5.0, "takes": [{"file": str(env.src), "startoffs": 0.0}]}]}]
    rep = env.run("inpaint", project(env.src, sel=None, tracks=tracks))
    expect_message(rep, "razor-edit areas must lie inside one audio item", 'track 1 "Drums"')
    assert len(env.calls("inpaint")) == 1


# ---------------------------------------------------------------- hit mode, backend per action

def test_remove_hit_action_sends_hit_remove(env):
    rep = env.run("remove_hit", project(env.src, sel=(12.0, 12.09)))
    assert_clean(rep)
    opts = h.argv_options(env.calls("inpaint")[0])
    assert opts["hit"] == "remove"
    assert_one_undo_block(rep, "remove hit")
    # plain Inpaint leaves the choice to the engine's default (replace the hit)
    env.run("inpaint", project(env.src, sel=(12.0, 12.09)))
    assert "hit" not in h.argv_options(env.calls("inpaint")[1])


def test_backend_per_action_and_autostart_loads_them(env):
    ext = {"backend_inpaint": "sa3-small", "backend_continue": "musicgen-small", "backend_generate": "",
           "autostart": "1"}
    rep = env.run("inpaint", project(env.src), mode="autostart", ext=ext)
    assert_clean(rep)
    assert h.argv_options(env.calls("inpaint")[0])["backend"] == "sa3-small"
    assert h.argv_options(env.calls("serve")[0])["backend"] == "sa3-small,musicgen-small"
    item = {"position": 2.0, "length": 10.0, "selected": True, "takes": [{"file": str(env.src), "startoffs": 1.5}]}
    env.run("continue", project(env.src, sel=None, item=item), ext=ext, inputs=[{"ok": True, "values": "2"}])
    assert h.argv_options(env.calls("continue")[0])["backend"] == "musicgen-small"
    tracks = [{"name": "Gen", "selected": True, "items": []}]
    env.run("generate", project(env.src, tracks=tracks), mode="neural", ext=ext, inputs=[{"ok": True, "values": "x"}])
    assert "backend" not in h.argv_options(env.calls("generate")[0])   # blank: the engine's first


# ---------------------------------------------------------------- the engine goes away

def test_engine_shutdown_is_shown_not_swallowed(env):
    rep = env.run("inpaint", project(env.src), mode="shutdown")
    expect_message(rep, "engine shutting down", "segue serve")
    assert len(h.items(rep)) == 1


def test_engine_that_stopped_answering_is_shown(env):
    rep = env.run("inpaint", project(env.src), mode="gone")
    expect_message(rep, "stopped answering")


# ---------------------------------------------------------------- the project changes while the engine works

def _edit(tmp_path, name: str, lua: str) -> str:
    """A user's edit, run as a script while a request is under way."""
    p = tmp_path / name
    p.write_text(lua)
    return str(p)


MOVE_FIRST_ITEM = """
local it = reaper.GetTrackMediaItem(reaper.GetTrack(0, 0), 0)
reaper.SetMediaItemInfo_Value(it, "D_POSITION", reaper.GetMediaItemInfo_Value(it, "D_POSITION") + 1.0)
"""
DELETE_FIRST_ITEM = """
local tr = reaper.GetTrack(0, 0)
reaper.DeleteTrackMediaItem(tr, reaper.GetTrackMediaItem(tr, 0))
"""


def test_inpaint_lands_where_the_item_moved_to_meanwhile(env, tmp_path):
    """The item is nudged +1 s while the engine works: the result landed at the old place, 1 s away
    from the audio it was made for; now it follows the source time (the selection 12-14.5 s played
    source 11.5-14.0 s, which sits at 13.0-15.5 s after the move)."""
    move = _edit(tmp_path, "move.lua", MOVE_FIRST_ITEM)
    rep = env.run("inpaint", project(env.src), mode="delay:1.5",
                  events=[{"after": 0.5, "action": "run_script", "script": move}])
    assert_clean(rep)
    left, mid, right = h.items(rep)
    assert approx(mid["position"], 13.0) and approx(mid["length"], 2.5)
    assert mid["takes"][0]["startoffs"] == pytest.approx(1.5 + 10.0)   # the original take: source 11.5 there
    assert "moved by +1.000 s while Segue worked" in rep["console"]


@pytest.mark.parametrize("script", ["inpaint", "continue"])
def test_a_result_for_an_item_deleted_meanwhile_is_reported_not_placed(env, tmp_path, script):
    gone = _edit(tmp_path, "delete.lua", DELETE_FIRST_ITEM)
    rep = env.run(script, project(env.src), mode="delay:1.5", inputs=[{"ok": True, "values": "2"}] if script == "continue" else None,
                  events=[{"after": 0.5, "action": "run_script", "script": gone}])
    assert rep["errors"] == [] and rep["undo_depth"] == 0 and rep["refresh_depth"] == 0, rep["errors"]
    assert h.items(rep) == []
    text = " ".join(m["msg"] for m in rep["messages"])
    assert "the item was deleted while Segue worked, so the result was not placed" in text
    assert ".wav" in text                                            # where the result is


def test_take_properties_are_copied_and_stretch_markers_refused(env):
    """A result plays as the take it replaces: its volume, pan, pitch and channel mode (they were reset
    to defaults, a level jump at both splits after Item: Normalize). Stretch markers move source
    time against timeline time: refused like a playrate."""
    take = {"file": str(env.src), "startoffs": 1.5, "vol": 0.5, "pan": -0.25, "pitch": 3.0, "chanmode": 3}
    item = {"position": 2.0, "length": 18.0, "selected": True, "takes": [take]}
    rep = env.run("inpaint", project(env.src, item=item))
    assert_clean(rep)
    new = h.items(rep)[1]["takes"][1]
    assert (new["vol"], new["pan"], new["pitch"], new["chanmode"]) == (0.5, -0.25, 3.0, 3)
    rep = env.run("continue", project(env.src, item=item), inputs=[{"ok": True, "values": "2"}])
    assert_clean(rep)
    cont = h.items(rep)[1]["takes"][0]
    assert (cont["vol"], cont["pan"], cont["pitch"], cont["chanmode"]) == (0.5, -0.25, 3.0, 3)
    sent = len(env.calls("inpaint"))
    stretched = dict(item, takes=[dict(take, stretch=[{"pos": 5.0, "srcpos": 6.5}])])
    rep = env.run("inpaint", project(env.src, item=stretched))
    assert "the take has stretch markers" in rep["messages"][0]["msg"], rep["messages"]
    assert len(env.calls("inpaint")) == sent                          # nothing sent


def test_a_windows_folder_with_a_trailing_backslash_keeps_the_command_line_whole(tmp_path):
    """`--out "D:\\Segue renders\\"`: under the Windows C runtime's rules a backslash before the closing
    quote escapes it and the rest of the line (--id, --status-file) became part of --out. Trailing
    backslashes are doubled there; the line, parsed by those rules, gives back every argument."""
    case = tmp_path / "quote.lua"
    case.write_text(f"""
local W = dofile({str(h.HERE / "fake_reaper.lua")!r})
local w = W.new({{ os = "Win64", resource_path = "C:\\\\R", project = {{}},
                  extstate = {{ Segue = {{ exe = "C:\\\\segue.exe", out = "D:\\\\Segue renders\\\\" }} }} }})
w:install()
local M = dofile({str(h.SCRIPTS / "segue_lib.lua")!r})
local opts = M.common_opts({{ bpm = 120, sig = "4/4" }}, 48000, 1.0, {{}}, "inpaint")
io.write(M.request_cmd("inpaint", {{ "D:\\\\a b\\\\drums.wav", "1", "2" }}, opts, "rid", "C:\\\\s\\\\rid.status"))
""")
    line = subprocess.run(["lua5.4", str(case)], capture_output=True, text=True, check=True).stdout
    args = _windows_argv(line)
    assert args[args.index("--out") + 1] == "D:\\Segue renders\\"
    assert args[args.index("--id") + 1] == "rid", args
    assert args[args.index("--status-file") + 1] == "C:\\s\\rid.status", args


def _windows_argv(line: str) -> list[str]:
    """Split a command line as the Microsoft C runtime does (CommandLineToArgvW): 2n backslashes and a
    quote give n backslashes and toggle quoting; 2n+1 give n and a literal quote; others are literal."""
    args, cur, quoted, i, have = [], [], False, 0, False
    while i < len(line):
        c = line[i]
        if c == "\\":
            n = 0
            while i < len(line) and line[i] == "\\":
                n, i = n + 1, i + 1
            if i < len(line) and line[i] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += 1
                have = True
                continue
            cur.append("\\" * n)
            have = True
            continue
        if c == '"':
            quoted, have = not quoted, True
        elif c in " \t" and not quoted:
            if have:
                args.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        args.append("".join(cur))
    return args
