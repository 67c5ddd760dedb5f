// Pure logic: float32 rounding, grid math, request plans, replies, versions.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const core = require("../device/segue_core.js");

function argsAsObject(req) {
    // positional values, then key/value options
    const vals = req.args.map((a) => a.v);
    return vals;
}
function option(req, key) {
    for (let i = 0; i < req.args.length - 1; i++)
        if (req.args[i].t === "s" && req.args[i].v === key && i >= 2) return req.args[i + 1];
    return undefined;
}

test("fround32 matches Math.fround (ties to even, subnormals, times of day)", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const values = [0, 1, -1, 0.1, 1 / 3, 600.1, 611.3, 3599.999, 1e-40, -2.5e-42, 3.4e38, 16777217, 16777219, 0.5 + 2 ** -25];
    for (let i = 0; i < 50000; i++) values.push(rnd() * 7200, (rnd() - 0.5) * 1e-3, rnd() * 2 ** (Math.floor(rnd() * 200) - 100));
    for (const x of values) assert.equal(core.fround32(x), Math.fround(x), "x=" + x);
});

test("float32 step: seconds precision that Max's udpsend keeps", () => {
    // at 10 minutes, a float32 holds seconds in steps of 2^-14 s (2.93 samples at 48 kHz)
    assert.equal(core.float32Step(600), 2 ** -14);
    assert.equal(core.float32Step(60), 2 ** -18);
    assert.ok(Math.abs(600.1 - core.fround32(600.1)) <= core.float32Step(600.1) / 2);
});

test("bar math: 7/8 at 120 BPM is 1.75 s; 4 bars of 7/8 at 87.5 BPM at 48 kHz", () => {
    assert.equal(core.barQuarters(7, 8), 3.5);
    assert.equal(core.barsToSamples(1, 7, 8, 120, 48000), 84000);
    assert.equal(core.barsToSamples(4, 7, 8, 87.5, 48000), 460800); // 9.6 s
    assert.equal(core.barsToSamples(3, 6, 8, 87.5, 44100), Math.round(3 * 3 * 60 / 87.5 * 44100));
});

const song = { tempo: 87.5, num: 7, den: 8, loop_start: 14, loop_length: 7, sr: 48000 };
const spb = 60 / 87.5;

// Unwarped clip at beat 7, trimmed so its left edge plays the file from 1.5 s.
function unwarped(extra) {
    return Object.assign({ is_audio_clip: 1, file_path: "/audio/src take.wav", start_time: 7, end_time: 7 + 8 / spb,
        warping: 0, looping: 0, loop_start: 1.5, loop_end: 9.5, start_marker: 1.5, sample_rate: 44100,
        sample_length: 44100 * 12, pitch_coarse: 0, pitch_fine: 0, warp_markers: [] }, extra);
}

test("continue plan: unwarped clip, 87.5 BPM, 7/8, project 48 kHz over a 44.1 kHz file", () => {
    const clip = unwarped();
    const p = core.planContinue(song, clip, 4, { seed: 7, variations: 2, replyPort: 50123, id: "m4l-test-1" });
    assert.equal(p.ok, true, p.message);
    assert.equal(p.request.address, "/segue/continue");
    const v = argsAsObject(p.request);
    assert.deepEqual(v.slice(0, 2), ["m4l-test-1", "/audio/src take.wav"]);
    assert.equal(p.request.args[2].t, "f");
    assert.ok(Math.abs(v[2] - 9.5) <= core.float32Step(9.5) / 2); // clip end in the file: 1.5 + 8 s
    assert.deepEqual(p.request.args[3], { t: "i", v: 4 });
    assert.deepEqual(option(p.request, "bpm"), { t: "f", v: 87.5 });
    assert.deepEqual(option(p.request, "sig"), { t: "s", v: "7/8" });
    assert.deepEqual(option(p.request, "sr"), { t: "i", v: 48000 });
    assert.deepEqual(option(p.request, "seed"), { t: "i", v: 7 });
    assert.deepEqual(option(p.request, "variations"), { t: "i", v: 2 });
    assert.deepEqual(option(p.request, "reply_port"), { t: "i", v: 50123 });
    // song bar lines every 3.5 beats = 2.4 s; file second 1.5 is song beat 7 = 2 bars: a bar line
    assert.ok(Math.abs(option(p.request, "downbeat").v - 1.5) < 1e-6);
    assert.equal(p.expectedSamples, 460800);
    assert.ok(Math.abs(p.lengthBeats - 14) < 1e-9);
    assert.ok(Math.abs(p.positionBeats - clip.end_time) < core.float32Step(9.5) / spb);
});

test("inpaint plan: brace ∩ clip, float32 times, placement mapped back from what the engine reads", () => {
    // A clip deep in a long file: its left edge plays the file from 611.3 s.
    const clip = unwarped({ loop_start: 611.3, start_marker: 611.3, sample_length: 44100 * 700, end_time: 7 + 20 / spb });
    const s = Object.assign({}, song, { loop_start: 3, loop_length: 14 }); // brace 3..17 overlaps clip from 7
    const p = core.planInpaint(s, clip, { id: "m4l-x" });
    assert.equal(p.ok, true, p.message);
    assert.equal(p.braceStart, 7);
    assert.equal(p.braceEnd, 17);
    const [id, src, st, en] = p.request.args;
    assert.equal(id.v, "m4l-x"); assert.equal(src.v, clip.file_path);
    assert.equal(st.t, "f"); assert.equal(en.t, "f");
    assert.equal(st.v, Math.fround(611.3)); assert.equal(en.v, Math.fround(611.3 + 10 * spb));
    assert.equal(p.expectedSamples, Math.round((en.v - st.v) * 48000));
    // The clip goes where the engine's start really is, within half a float32 step of the brace.
    assert.ok(Math.abs(p.positionBeats - (7 + (st.v - 611.3) / spb)) < 1e-9);
    assert.ok(Math.abs(p.positionBeats - 7) * spb <= core.float32Step(611.3) / 2);
    assert.ok(option(p.request, "downbeat").v >= 0 && option(p.request, "downbeat").v < 3.5 * spb);
});

test("inpaint refuses when the loop brace misses the clip", () => {
    const p = core.planInpaint(Object.assign({}, song, { loop_start: 40, loop_length: 4 }), unwarped(), {});
    assert.equal(p.ok, false); assert.equal(p.code, "no_overlap");
    assert.match(p.message, /loop brace/);
});

test("warped clip at the song tempo maps beats through its warp markers", () => {
    // Warp markers: clip beat 0 at file 0.25 s, 87.5 BPM throughout.
    const m = [{ beat_time: 0, sample_time: 0.25 }, { beat_time: 16, sample_time: 0.25 + 16 * spb },
               { beat_time: 16.03125, sample_time: 0.25 + 16.03125 * spb }];
    const clip = unwarped({ warping: 1, loop_start: 2, start_marker: 2, warp_markers: m });
    const map = core.sourceMapping(clip, song);
    assert.equal(map.ok, true, map.message);
    assert.ok(Math.abs(map.toFile(7) - (0.25 + 2 * spb)) < 1e-12);
    assert.ok(Math.abs(map.toFile(9) - (0.25 + 4 * spb)) < 1e-12);
    assert.ok(Math.abs(map.toSong(map.toFile(11.5)) - 11.5) < 1e-9);
});

test("warped clip at another tempo, transposed unwarped clip: refused with what to do", () => {
    const m = [{ beat_time: 0, sample_time: 0 }, { beat_time: 8, sample_time: 4 }]; // 120 BPM segment
    let p = core.planContinue(song, unwarped({ warping: 1, warp_markers: m }), 4, {});
    assert.equal(p.ok, false); assert.equal(p.code, "warped_other_tempo");
    assert.match(p.message, /120\.00 BPM.*87\.50 BPM.*Consolidate/);
    p = core.planContinue(song, unwarped({ warping: 1, warp_markers: [] }), 4, {});
    assert.equal(p.code, "warp_unknown");
    p = core.planInpaint(song, unwarped({ pitch_coarse: 3 }), {});
    assert.equal(p.code, "transposed");
    p = core.planContinue(song, { is_audio_clip: 0, start_time: 0, end_time: 4 }, 4, {});
    assert.equal(p.code, "not_audio");
});

test("looped warped clip: a span in a loop repeat is refused", () => {
    const m = [{ beat_time: 0, sample_time: 0 }, { beat_time: 8, sample_time: 8 * spb }];
    const clip = unwarped({ warping: 1, looping: 1, start_marker: 0, loop_start: 0, loop_end: 4, warp_markers: m,
                            start_time: 0, end_time: 16 });
    const p = core.planInpaint(Object.assign({}, song, { loop_start: 2, loop_length: 4 }), clip, {});
    assert.equal(p.code, "in_loop_repeat");
    const ok = core.planInpaint(Object.assign({}, song, { loop_start: 1, loop_length: 2 }), clip, {});
    assert.equal(ok.ok, true, ok.message);
});

test("input checks: no sample rate yet, bars and variations ranges, generate needs a prompt", () => {
    assert.equal(core.planContinue(Object.assign({}, song, { sr: 0 }), unwarped(), 4, {}).code, "no_sr");
    assert.equal(core.planContinue(song, unwarped(), 33, {}).code, "bad_bars");
    assert.equal(core.planContinue(song, unwarped(), 4, { variations: 5 }).code, "bad_variations");
    assert.equal(core.planGenerate(song, 4, {}).code, "no_prompt");
    const g = core.planGenerate(song, 2, { prompt: "dusty 7/8 groove", id: "m4l-g" });
    assert.equal(g.ok, true);
    assert.deepEqual(g.request.args.slice(0, 2), [{ t: "s", v: "m4l-g" }, { t: "i", v: 2 }]);
    assert.deepEqual(option(g.request, "prompt"), { t: "s", v: "dusty 7/8 groove" });
    assert.equal(g.positionBeats, song.loop_start);
    assert.equal(g.expectedSamples, core.barsToSamples(2, 7, 8, 87.5, 48000));
});

test("request ids never look like numbers (Max would turn them into ints)", () => {
    for (let i = 0; i < 100; i++) assert.match(core.newRequestId(), /^m4l-[0-9a-f]+-\d+$/);
    assert.deepEqual(core.toMaxMessage(core.simpleRequest("/segue/ping", "m4l-1", 5000)),
                     ["/segue/ping", "m4l-1", "reply_port", 5000]);
});

test("replies parse into events", () => {
    assert.deepEqual(core.parseReply("/segue/done", ["m4l-1", "/r/a.wav", 9.6, 48000, "/r/b.wav"]),
                     { type: "done", id: "m4l-1", paths: ["/r/a.wav", "/r/b.wav"], seconds: 9.6, sr: 48000 });
    assert.equal(core.parseReply("/segue/progress", ["m4l-1", 0.5, "write"]).fraction, 0.5);
    assert.deepEqual(core.parseReply("/segue/error", ["m4l-1", "unsupported", "no"]),
                     { type: "error", id: "m4l-1", code: "unsupported", message: "no" });
    assert.equal(core.parseReply("/segue/status", ["s", "busy", "dsp", 2, "m4l-1"]).queued, 2);
    assert.equal(core.parseReply("/segue/pong", ["p", "0.1.0", "dsp"]).backend, "dsp");
    assert.match(core.errorText("unsupported", "generate"), /cannot Generate/);
});

test("placement methods by Live version", () => {
    const m = (a, b, c) => core.placementMethods(core.parseVersion(a, b, c));
    assert.deepEqual(m(12, 3, 1), ["arrangement", "session", "manual"]);
    assert.deepEqual(m(12, 2, 0), ["arrangement", "session", "manual"]);
    assert.deepEqual(m(12, 1, 10), ["session", "manual"]);
    assert.deepEqual(m(12, 0, 5), ["session", "manual"]);
    assert.deepEqual(m(12, 0, 4), ["manual"]);
    assert.deepEqual(m(11, 3, 25), ["manual"]);
    assert.deepEqual(m(13, 0, 0), ["arrangement", "session", "manual"]);
});
