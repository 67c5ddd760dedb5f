// The Max glue (device/segue_device.js) run as Max runs it, against the
// LiveAPI stand-in, with replies fed in as [udpreceive] would deliver them.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const core = require("../device/segue_core.js");
const { LiveSet } = require("./standin_liveapi.js");
const { MaxJs } = require("./max_harness.js");
const { writeFloatWav } = require("../node/wav.js");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "segue-dev-"));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SRC = path.join(tmp, "drums.wav");
writeFloatWav(SRC, 44100, 1, 44100 * 10);

function setup(version, extra) {
    extra = extra || {};
    const set = new LiveSet(Object.assign({ version, tempo: 120, num: 4, den: 4, loop_start: 4, loop_length: 4,
        tracks: [{ clips: [{ file_path: SRC, start_time: 0, end_time: 16, loop_start: 0, sample_rate: 44100,
                              sample_length: 441000 }] }] }, extra.set || {}));
    const max = new MaxJs(set.api(), extra.max);
    max.send("bang"); // [live.thisdevice]
    max.send("sr", 48000); // [dspstate~]
    return { set, max };
}

test("device: picks a reply port, polls status, says how to start a missing engine", () => {
    const { max } = setup([12, 2, 0]);
    const [[sel, port]] = max.take(1);
    assert.equal(sel, "port");
    assert.ok(port >= 49152 && port < 65536);
    assert.deepEqual(max.take(0), [["host", "127.0.0.1"], ["port", 9137]]); // [udpsend] told where the engine is
    max.tick(2000);
    const sent = max.take(0);
    assert.equal(sent.length, 1);
    assert.equal(sent[0][0], "/segue/status");
    assert.deepEqual(sent[0].slice(2), ["reply_port", port]);
    max.tick(2000); max.tick(2000); // no reply for 4 s
    assert.deepEqual(max.ui("engine").slice(-1), [core.engineHelp("127.0.0.1", 9137)]);
    max.send("continue_clip");
    assert.equal(max.take(0).filter((m) => m[0] === "/segue/continue").length, 0, "nothing sent to a dead engine");
});

test("device: inpaint round, from button to clips in the arrangement", () => {
    const { set, max } = setup([12, 2, 0]);
    const port = max.take(1)[0][1];
    max.take(0);
    max.tick(2000);
    const statusId = max.take(0)[0][1];
    max.send("/segue/status", statusId, "idle", "dsp", 0, "");
    assert.match(max.ui("engine").slice(-1)[0], /Engine: dsp \| idle \| queue 0/);
    max.send("variations", 2);
    max.send("seed", 11);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    assert.ok(req, "inpaint request sent");
    const [, id, src, start, end] = req;
    assert.match(id, /^m4l-/);
    assert.equal(src, SRC);
    assert.equal(start, 2); assert.equal(end, 4); // brace 4..8 beats at 120 BPM
    const opts = {};
    for (let i = 5; i < req.length; i += 2) opts[req[i]] = req[i + 1];
    assert.deepEqual(opts, { downbeat: 0, bpm: 120, sig: "4/4", sr: 48000, seed: 11, variations: 2, reply_port: port, f32: 1 });
    max.send("/segue/accepted", id, 0);
    max.send("/segue/progress", id, 0.5, "generate 1/2");
    assert.deepEqual(max.ui("progress").slice(-1), [50]);
    const outs = [1, 2].map((k) => { const p = path.join(tmp, `in-v${k}.wav`); writeFloatWav(p, 48000, 1, 96000); return p; });
    max.send("/segue/done", id, outs[0], 2.0, 48000, outs[1]);
    const creates = set.calls("create_audio_clip");
    assert.deepEqual(creates.map((c) => [c.path, c.args[0], c.args[1]]),
                     [["live_set tracks 0", outs[0], 4], ["live_set tracks 0 take_lanes 0", outs[1], 4]]);
    assert.match(max.ui("status").slice(-1)[0], /2 clip\(s\) in the Arrangement/);
});

test("device: errors reach the UI; replies for other ids are ignored; old Live reveals the file", () => {
    const { set, max } = setup([11, 3, 0]);
    max.take(0);
    max.tick(2000);
    max.send("/segue/status", max.take(0)[0][1], "idle", "dsp", 0, "");
    max.send("prompt", "warm", "tape", "hiss");
    max.send("generate");
    const req = max.take(0).find((m) => m[0] === "/segue/generate");
    assert.deepEqual(req.slice(2, 3), [4]);
    assert.ok(req.includes("warm tape hiss"));
    max.send("/segue/error", "someone-else", "busy", "x");
    assert.doesNotMatch(max.ui("status").slice(-1)[0], /busy/);
    max.send("/segue/error", req[1], "unsupported", "dsp cannot generate");
    assert.match(max.ui("status").slice(-1)[0], /cannot Generate.*\[unsupported\]/);
    // Continue on Live 11: no LOM call can place audio, the folder is revealed.
    max.send("continue_clip");
    const c = max.take(0).find((m) => m[0] === "/segue/continue");
    const out = path.join(tmp, "cont-v1.wav");
    writeFloatWav(out, 48000, 1, 48000 * 8);
    max.send("/segue/done", c[1], out, 8.0, 48000);
    assert.deepEqual(max.take(3), [["file://" + tmp]]);
    assert.match(max.ui("result").slice(-1)[0], /Drag into Live/);
    assert.equal(set.calls("create_audio_clip").length, 0);
});

test("device JS stays ES5 for Max's classic [js]", () => {
    for (const f of ["segue_core.js", "segue_live.js", "segue_device.js"]) {
        const src = fs.readFileSync(path.join(__dirname, "..", "device", f), "utf8").replace(/\/\/.*$/gm, "");
        for (const [re, what] of [[/\blet\s/, "let"], [/\bconst\s/, "const"], [/=>/, "arrow function"], [/`/, "template string"],
                                  [/\bclass\s/, "class"], [/\.\.\.[A-Za-z]/, "spread"], [/Math\.fround|Number\.isInteger|\.includes\(/, "ES2015 API"]])
            assert.doesNotMatch(src, re, `${f} uses ${what}`);
    }
});

// An engine ready and a job planned: returns the request sent.
function connect(max) {
    max.take(0);
    max.tick(2000);
    max.send("/segue/status", max.take(0)[0][1], "idle", "dsp", 0, "");
}
function optsOf(req, from) { const o = {}; for (let i = from; i < req.length; i += 2) o[req[i]] = req[i + 1]; return o; }

test("device: engine host and port are settable; the help names them", () => {
    const { max } = setup([12, 2, 0]);
    max.take(0);
    max.send("engine_host", "localhost");
    max.send("engine_port", 9200);
    assert.deepEqual(max.take(0), [["host", "localhost"], ["port", 9200]]);
    max.send("engine_port", 70000);
    assert.match(max.ui("status").slice(-1)[0], /Port must be 1-65535/);
    max.tick(2000); max.tick(2000); max.tick(2000);
    assert.equal(max.ui("engine").slice(-1)[0], core.engineHelp("localhost", 9200));
    assert.match(core.engineHelp("localhost", 9200), /localhost:9200.*segue serve --port 9200/);
});

test("device: on a Mac every path handed to Live takes the /Volumes/<disk>/ form", () => {
    const { set, max } = setup([12, 2, 0], { set: { os: "macintosh", bootVolume: "Macintosh HD" },
                                             max: { os: "macintosh", patcherPath: "Macintosh HD:/Users/me/Segue.amxd" } });
    connect(max);
    max.send("variations", 2);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    const outs = [1, 2].map((k) => { const p = path.join(tmp, `mac-v${k}.wav`); writeFloatWav(p, 48000, 1, 96000); return p; });
    max.send("/segue/done", req[1], outs[0], 2.0, 48000, outs[1]);
    const creates = set.calls("create_audio_clip");
    assert.deepEqual(creates.map((c) => c.args[0]), outs.map((p) => "/Volumes/Macintosh HD" + p));
    assert.equal(set.tracks[0].clips.length, 2);           // the original and the new clip
    assert.equal(set.tracks[0].lanes[0].clips.length, 1);  // the variation on a take lane
    assert.match(max.ui("status").slice(-1)[0], /2 clip\(s\) in the Arrangement/);
    // a path already on another drive stays as it is; other systems are left alone
    assert.equal(core.livePath("/Volumes/Ext/r.wav", "macintosh", "Macintosh HD"), "/Volumes/Ext/r.wav");
    assert.equal(core.livePath("C:/r.wav", "windows", ""), "C:/r.wav");
    assert.equal(core.volumeOfMaxPath("Macintosh HD:/Users/me/x.amxd"), "Macintosh HD");
});

test("device: the stand-in refuses a Mac path without /Volumes (what the device used to send)", () => {
    const set = new LiveSet({ version: [12, 2, 0], tempo: 120, num: 4, den: 4, os: "macintosh", tracks: [{}] });
    const out = path.join(tmp, "plain.wav");
    writeFloatWav(out, 48000, 1, 4800);
    set.api()("live_set tracks 0").call("create_audio_clip", out, 0);
    assert.equal(set.tracks[0].clips.length, 0);
});

test("device: hit mode, a backend per action, locator regions", () => {
    const { max } = setup([12, 2, 0], { set: { cuePoints: [4.5, 5, 6, 7, 20] } });
    connect(max);
    max.send("hit", 1);
    max.send("backend_inpaint", "sa3-small");
    max.send("backend_continue", "musicgen-small");
    max.send("locator_regions", 1);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    const o = optsOf(req, 5);
    assert.equal(o.hit, "remove");
    assert.equal(o.backend, "sa3-small");
    assert.equal(o.regions, "2.250000000:2.500000000,3.000000000:3.500000000"); // beats 4.5-5, 6-7 at 120 BPM
    max.send("/segue/error", req[1], "cancelled", "x"); // end it
    max.send("continue_clip");
    const c = max.take(0).find((m) => m[0] === "/segue/continue");
    assert.equal(optsOf(c, 5).backend, "musicgen-small");
    assert.equal(optsOf(c, 5).hit, undefined);
});

test("device: text fields restored with the set reach the requests; an empty field's bare bang is no text", () => {
    const { max } = setup([12, 2, 0]);
    connect(max);
    // what the load bangs deliver: a restored prompt and inpaint backend, empty others, a restored host
    max.send("prompt", "dusty", "breakbeat");
    max.send("backend_inpaint", "sa3-small");
    max.send("backend_continue", "bang");
    max.send("engine_host", "bang");
    const sent = max.take(0);
    assert.deepEqual(sent.filter((m) => m[0] === "host"), [["host", "127.0.0.1"]]);
    max.tick(2000);
    const poll = max.take(0).find((m) => m[0] === "/segue/status");
    max.send("/segue/status", poll[1], "idle", "dsp", 0, "");
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    assert.equal(optsOf(req, 5).backend, "sa3-small");
    assert.equal(optsOf(req, 5).prompt, "dusty breakbeat");
    max.send("/segue/error", req[1], "cancelled", "x");
    max.send("prompt", "bang");
    max.send("continue_clip");
    const c = max.take(0).find((m) => m[0] === "/segue/continue");
    assert.equal(optsOf(c, 5).backend, undefined);
    assert.equal(optsOf(c, 5).prompt, undefined);
});

test("device: the engine's shutdown is shown; the user's own Cancel is just 'Cancelled'", () => {
    const { max } = setup([12, 2, 0]);
    connect(max);
    max.send("inpaint");
    let req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    max.send("/segue/accepted", req[1], 0);
    max.send("/segue/error", req[1], "cancelled", "engine shutting down");
    assert.match(max.ui("status").slice(-1)[0], /engine cancelled the request \(engine shutting down\).*segue serve/);
    max.send("inpaint");
    req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    max.send("cancel");
    max.send("/segue/error", req[1], "cancelled", "cancelled by request");
    assert.match(max.ui("status").slice(-1)[0], /^Cancelled\./);
});

test("device: a lost done is asked for again with /segue/result", () => {
    const { set, max } = setup([12, 2, 0]);
    connect(max);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    max.send("/segue/accepted", req[1], 0);
    max.tick(2000);                                   // the status poll
    const poll = max.take(0).find((m) => m[0] === "/segue/status");
    max.send("/segue/status", poll[1], "busy", "dsp", 0, req[1]);  // still running: nothing asked
    assert.equal(max.take(0).filter((m) => m[0] === "/segue/result").length, 0);
    max.tick(2000);
    const poll2 = max.take(0).find((m) => m[0] === "/segue/status");
    max.send("/segue/status", poll2[1], "idle", "dsp", 0, "");     // idle, and no done came
    const ask = max.take(0).find((m) => m[0] === "/segue/result");
    assert.ok(ask, "asked for the result");
    assert.equal(ask[1], req[1]);
    max.send("/segue/error", req[1], "not_found", "not finished");   // one "not finished" is not yet lost
    assert.doesNotMatch(max.ui("status").slice(-1)[0] || "", /lost/);
    const out = path.join(tmp, "recovered.wav");
    writeFloatWav(out, 48000, 1, 96000);
    max.send("/segue/done", req[1], out, 2.0, 48000);
    assert.equal(set.calls("create_audio_clip").length, 1);
});

test("device: a request lost before the engine saw it (no accepted) is found lost, not Busy for good", () => {
    const { max } = setup([12, 2, 0]);
    connect(max);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    for (let k = 0; k < 3; k++) {                       // no accepted: the datagram never arrived
        max.tick(2000);
        const poll = max.take(0).find((m) => m[0] === "/segue/status");
        max.send("/segue/status", poll[1], "idle", "dsp", 0, "");
        const ask = max.take(0).find((m) => m[0] === "/segue/result");
        if (ask) max.send("/segue/error", req[1], "not_found", "no such request");
    }
    assert.match(max.ui("status").slice(-1)[0], /\[lost\]/);
    max.take(0);
    max.send("continue_clip");                          // and the device takes new work
    assert.ok(max.take(0).find((m) => m[0] === "/segue/continue"));
});

test("device: the status names the clip a request was made from", () => {
    const { max } = setup([12, 2, 0]);
    connect(max);
    max.send("continue_clip");
    assert.match(max.ui("status").slice(-1)[0], /^continue: sent \(clip .*at beat \d/);
});

test("device: a tempo change while the engine works is said with the result", () => {
    const { set, max } = setup([12, 2, 0]);
    connect(max);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    max.send("/segue/accepted", req[1], 0);
    set.tempo = 100;                                    // the user changes the tempo meanwhile
    const out = path.join(tmp, "tempo-moved.wav");
    writeFloatWav(out, 48000, 1, 96000);
    max.send("/segue/done", req[1], out, 2.0, 48000);
    assert.match(max.ui("status").slice(-1)[0], /song tempo changed from 120 to 100 BPM meanwhile/);
});

test("device: an idle engine that twice has no record of the request: lost, said so", () => {
    const { max } = setup([12, 2, 0]);
    connect(max);
    max.send("inpaint");
    const req = max.take(0).find((m) => m[0] === "/segue/inpaint");
    max.send("/segue/accepted", req[1], 0);
    for (let k = 0; k < 2; k++) {
        max.tick(2000);
        const poll = max.take(0).find((m) => m[0] === "/segue/status");
        max.send("/segue/status", poll[1], "idle", "dsp", 0, "");
        assert.ok(max.take(0).find((m) => m[0] === "/segue/result"));
        max.send("/segue/error", req[1], "not_found", "no finished request");
    }
    assert.match(max.ui("status").slice(-1)[0], /answer was lost.*\[lost\]/);
});
