// Reading Live's state and writing results back, against the LiveAPI stand-in.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const core = require("../device/segue_core.js");
const live = require("../device/segue_live.js");
const { LiveSet } = require("./standin_liveapi.js");
const { writeFloatWav, readWavInfo } = require("../node/wav.js");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "segue-m4l-"));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SR_PROJECT = 48000, SR_SOURCE = 44100, TEMPO = 87.5, SPB = 60 / TEMPO;
const SRC = path.join(tmp, "bass take.wav");
writeFloatWav(SRC, SR_SOURCE, 2, SR_SOURCE * 12, (i) => Math.sin(i / 20) * 0.1);

// Unwarped clip at beat 7, its left edge trimmed to file 1.5 s, 8 s long.
function sourceClip(extra) {
    return Object.assign({ file_path: SRC, start_time: 7, end_time: 7 + 8 / SPB, warping: 0, loop_start: 1.5,
        start_marker: 1.5, sample_rate: SR_SOURCE, sample_length: SR_SOURCE * 12 }, extra);
}

function makeSet(opts) {
    return new LiveSet(Object.assign({ tempo: TEMPO, num: 7, den: 8, loop_start: 10.5, loop_length: 7,
        tracks: [{ clips: [sourceClip()] }] }, opts));
}

// Stand-in for the engine: a result file of exactly the planned length.
function fakeResults(plan, n, tag) {
    const out = [];
    for (let k = 0; k < n; k++) {
        const p = path.join(tmp, `${tag}-v${k + 1}.wav`);
        writeFloatWav(p, plan.sr, 2, plan.expectedSamples);
        out.push(p);
    }
    return out;
}

test("reads song, device track and Live version through the LOM", () => {
    const set = makeSet({ version: [12, 3, 1] });
    const api = set.api();
    assert.deepEqual(live.readSong(api, SR_PROJECT),
                     { tempo: TEMPO, num: 7, den: 8, loop_start: 10.5, loop_length: 7, sr: SR_PROJECT });
    assert.equal(live.deviceTrackPath(api), "live_set tracks 0");
    assert.deepEqual(live.readVersion(api), { major: 12, minor: 3, bugfix: 1 });
    assert.equal(live.deviceTrackPath(makeSet({ deviceTrack: null }).api()), null);
    // Inside a rack the parent is a chain: the device walks up to the track (it said "Put Segue on an
    // audio track" there).
    assert.equal(live.deviceTrackPath(makeSet({ inRack: true }).api()), "live_set tracks 0");
});

test("continue on Live 12.2: an arrangement clip at the clip end, exactly 4 bars of 7/8 at 87.5 BPM, warp off", () => {
    const set = makeSet({ version: [12, 2, 0] });
    const api = set.api();
    const song = live.readSong(api, SR_PROJECT);
    const clip = live.pickContinueClip(api, "live_set tracks 0");
    assert.equal(clip.file_path, SRC);
    const plan = core.planContinue(song, clip, 4, { id: "m4l-c1" });
    assert.equal(plan.ok, true, plan.message);
    assert.equal(plan.expectedSamples, 460800); // 4 * 3.5 beats * 60/87.5 s * 48 kHz
    const files = fakeResults(plan, 1, "continue");
    const r = live.placeResults(api, "live_set tracks 0", plan, files, live.readVersion(api));
    assert.equal(r.method, "arrangement");
    const creates = set.calls("create_audio_clip");
    assert.equal(creates.length, 1);
    assert.equal(creates[0].path, "live_set tracks 0");
    assert.equal(creates[0].args[0], files[0]);
    assert.ok(Math.abs(creates[0].args[1] - (7 + 8 / SPB)) < 1e-6, "placed at the clip end: " + creates[0].args[1]);
    // Live created it warped; the device turned warp off and named it.
    const sets = set.log.filter((e) => e.op === "set").map((e) => [e.prop, e.value]);
    assert.deepEqual(sets, [["warping", 0], ["gain", 0.4], ["name", "Segue continue"]]);
    const made = set.tracks[0].clips.find((c) => c.file_path === files[0]);
    const lengthBeats = set.get({ kind: "clip", clip: made }, "end_time")[0] - made.start_time;
    assert.ok(Math.abs(lengthBeats - 14) < 1 / SR_PROJECT / SPB, "4 bars of 7/8 = 14 beats, got " + lengthBeats);
    assert.equal(made.sample_rate, SR_PROJECT);
});

test("inpaint with 3 variations on Live 12.2: main lane plus two new take lanes, all over the brace span", () => {
    const set = makeSet({ version: [12, 2, 0], loop_start: 10.5, loop_length: 3.5 });
    const api = set.api();
    const song = live.readSong(api, SR_PROJECT);
    const clip = live.pickInpaintClip(api, "live_set tracks 0", song);
    const plan = core.planInpaint(song, clip, { variations: 3, id: "m4l-i1" });
    assert.equal(plan.ok, true, plan.message);
    assert.equal(plan.expectedSamples, Math.round(3.5 * SPB * SR_PROJECT));
    const files = fakeResults(plan, 3, "inpaint");
    const r = live.placeResults(api, "live_set tracks 0", plan, files, live.readVersion(api));
    assert.equal(r.method, "arrangement");
    assert.deepEqual(r.clips, ["live_set tracks 0 arrangement_clips 1", "live_set tracks 0 take_lanes 0 arrangement_clips 0",
                               "live_set tracks 0 take_lanes 1 arrangement_clips 0"]);
    assert.equal(set.calls("create_take_lane").length, 2);
    const creates = set.calls("create_audio_clip");
    assert.deepEqual(creates.map((c) => c.path), ["live_set tracks 0", "live_set tracks 0 take_lanes 0",
                                                  "live_set tracks 0 take_lanes 1"]);
    for (const c of creates) assert.ok(Math.abs(c.args[1] - 10.5) < 1e-6);
    const names = set.log.filter((e) => e.op === "set" && e.prop === "name").map((e) => e.value);
    assert.deepEqual(names, ["Segue inpaint v1", "Segue inpaint v2", "Segue inpaint v3"]);
    // The original clip's file is untouched: still the source, same header.
    assert.equal(set.tracks[0].clips[0].file_path, SRC);
    assert.equal(readWavInfo(SRC).frames, SR_SOURCE * 12);
});

test("Live 12.1: session fallback fills the next empty clip slots", () => {
    const set = makeSet({ version: [12, 1, 5] });
    set.tracks[0].slots[0].clip = { file_path: "/x.wav", is_audio_clip: 1 };
    const api = set.api();
    const plan = core.planContinue(live.readSong(api, SR_PROJECT), live.pickContinueClip(api, "live_set tracks 0"), 2, {});
    const files = fakeResults(plan, 2, "session");
    const r = live.placeResults(api, "live_set tracks 0", plan, files, live.readVersion(api));
    assert.equal(r.method, "session");
    assert.deepEqual(set.calls("create_audio_clip").map((c) => [c.path, c.args[0]]),
                     [["live_set tracks 0 clip_slots 1", files[0]], ["live_set tracks 0 clip_slots 2", files[1]]]);
    assert.deepEqual(r.clips, ["live_set tracks 0 clip_slots 1 clip", "live_set tracks 0 clip_slots 2 clip"]);
    assert.equal(set.tracks[0].slots[1].clip.warping, 0);
});

test("session fallback adds scenes when the track runs out of slots", () => {
    const set = makeSet({ version: [12, 0, 5], tracks: [{ clips: [sourceClip()], slots: 1 }] });
    const api = set.api();
    const plan = core.planContinue(live.readSong(api, SR_PROJECT), live.pickContinueClip(api, "live_set tracks 0"), 1, {});
    const r = live.placeResults(api, "live_set tracks 0", plan, fakeResults(plan, 3, "scenes"), live.readVersion(api));
    assert.equal(r.method, "session");
    assert.equal(r.clips.length, 3);
    assert.equal(set.calls("create_scene").length, 2);
});

test("Live 12.2 without a working Track.create_audio_clip falls back to the session", () => {
    const set = makeSet({ version: [12, 2, 0], missing: ["track.create_audio_clip"] });
    const api = set.api();
    const plan = core.planContinue(live.readSong(api, SR_PROJECT), live.pickContinueClip(api, "live_set tracks 0"), 1, {});
    const r = live.placeResults(api, "live_set tracks 0", plan, fakeResults(plan, 1, "fallback"), live.readVersion(api));
    assert.equal(r.method, "session");
    assert.equal(set.tracks[0].clips.length, 1); // nothing landed in the arrangement
});

test("Live 12.0.4 and older: nothing is created, the files are shown for drag and drop", () => {
    const set = makeSet({ version: [12, 0, 4] });
    const api = set.api();
    const plan = core.planContinue(live.readSong(api, SR_PROJECT), live.pickContinueClip(api, "live_set tracks 0"), 1, {});
    const files = fakeResults(plan, 1, "manual");
    const r = live.placeResults(api, "live_set tracks 0", plan, files, live.readVersion(api));
    assert.deepEqual(r, { method: "manual", clips: [], files });
    assert.equal(set.calls("create_audio_clip").length, 0);
});

test("clip choice: the selected clip wins, else the last (continue) or the most overlapped (inpaint)", () => {
    const a = sourceClip({ start_time: 0, end_time: 4, loop_start: 0 });
    const b = sourceClip({ start_time: 6, end_time: 9, loop_start: 0 });
    const c = sourceClip({ start_time: 12, end_time: 20, loop_start: 0 });
    let set = makeSet({ tracks: [{ clips: [a, b, c] }] });
    assert.equal(live.pickContinueClip(set.api(), "live_set tracks 0").start_time, 12);
    set = makeSet({ tracks: [{ clips: [a, b, c] }], detailClip: "live_set tracks 0 arrangement_clips 1" });
    assert.equal(live.pickContinueClip(set.api(), "live_set tracks 0").start_time, 6);
    const song = { tempo: TEMPO, num: 7, den: 8, loop_start: 3, loop_length: 10, sr: SR_PROJECT }; // 3..13
    set = makeSet({ tracks: [{ clips: [a, b, c] }] });
    assert.equal(live.pickInpaintClip(set.api(), "live_set tracks 0", song).start_time, 6); // overlaps 3 beats
    set = makeSet({ tracks: [{ clips: [a, b, c] }], detailClip: "live_set tracks 0 arrangement_clips 2" });
    assert.equal(live.pickInpaintClip(set.api(), "live_set tracks 0", song).start_time, 12);
    assert.equal(live.pickInpaintClip(set.api(), "live_set tracks 0", Object.assign({}, song, { loop_start: 30 })), null);
});

test("warp markers arrive as JSON text and are read", () => {
    const m = [{ beat_time: 0, sample_time: 0.25 }, { beat_time: 4, sample_time: 0.25 + 4 * SPB }];
    const set = makeSet({ tracks: [{ clips: [sourceClip({ warping: 1, warp_markers: m, loop_start: 0 })] }] });
    const clip = live.readClip(set.api(), "live_set tracks 0 arrangement_clips 0");
    assert.deepEqual(clip.warp_markers, m);
    assert.deepEqual(live.parseWarpMarkers(["not json"]), []);
    assert.equal(core.sourceMapping(clip, { tempo: TEMPO }).ok, true);
});


test("the result takes the source clip's gain; a warped clip that is transposed is refused", () => {
    // Gain 0.55 on the source: the new clip played at Live's default, a level jump inside the clip.
    const set = makeSet({ version: [12, 2, 0], tracks: [{ clips: [sourceClip({ gain: 0.55 })] }] });
    const api = set.api();
    const song = live.readSong(api, SR_PROJECT);
    const clip = live.pickContinueClip(api, "live_set tracks 0");
    const plan = core.planContinue(song, clip, 4, { id: "m4l-g1" });
    assert.equal(plan.ok, true, plan.message);
    live.placeResults(api, "live_set tracks 0", plan, fakeResults(plan, 1, "gain"), live.readVersion(api));
    const gains = set.log.filter((e) => e.op === "set" && e.prop === "gain").map((e) => e.value);
    assert.deepEqual(gains, [0.55]);
    // Warped at the song tempo but Transpose +7: pitch changes, speed does not; the engine hears the
    // file's pitch and the unwarped result would land at it. It was accepted.
    const warped = { warping: 1, looping: 0, loop_start: 0, start_marker: 0, pitch_coarse: 7,
                     warp_markers: [{ beat_time: 0, sample_time: 0 }, { beat_time: TEMPO / 60 * 12, sample_time: 12 }] };
    const t = core.planInpaint(song, Object.assign({}, clip, warped), { id: "m4l-t1" });
    assert.equal(t.ok, false);
    assert.equal(t.code, "transposed");
    assert.match(t.message, /Transpose 7 st/);
    const ok = core.planInpaint(song, Object.assign({}, clip, warped, { pitch_coarse: 0 }), { id: "m4l-t2" });
    assert.equal(ok.ok, true, ok.message);
});
