// End to end: the device's own code (segue_device.js in the Max-like sandbox,
// LiveAPI stand-in) talks over real UDP on 127.0.0.1 to a real `segue serve`,
// encoding exactly as Max's [udpsend] does (ints as 'i', other numbers as
// float32 'f', text as 's') and decoding replies as [udpreceive] hands them on.
// Needs SEGUE_E2E_PORT (engine port) and SEGUE_E2E_SRC (87.5 BPM 7/8 WAV,
// 44.1 kHz, >= 16 s); tests/test_ableton_node.py starts the engine and sets them.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const dgram = require("node:dgram");
const osc = require("../node/osc.js");
const { readWavInfo } = require("../node/wav.js");
const { LiveSet } = require("./standin_liveapi.js");
const { MaxJs } = require("./max_harness.js");

const PORT = Number(process.env.SEGUE_E2E_PORT || 0);
const SRC = process.env.SEGUE_E2E_SRC || "";
const skip = !PORT || !SRC ? "set SEGUE_E2E_PORT and SEGUE_E2E_SRC (tests/test_ableton_node.py does)" : false;

const TEMPO = 87.5, SPB = 60 / TEMPO, SR = 48000;

// What Max's [udpsend] puts on the wire for a message out of [js].
function maxToOsc(atoms) {
    const args = atoms.slice(1).map((v) => typeof v === "string" ? { t: "s", v }
        : Number.isInteger(v) ? { t: "i", v } : { t: "f", v });
    return { address: atoms[0], args };
}

class Rig {
    constructor(set) {
        this.set = set;
        this.max = new MaxJs(set.api());
        this.wire = []; // requests as sent (decoded back from the bytes)
        this.replies = [];
        this.out = dgram.createSocket("udp4"); // [udpsend]: its own ephemeral port
        this.target = { host: "127.0.0.1", port: 9137 }; // [udpsend 127.0.0.1 9137], retargeted by host/port messages
        this.in = null; // [udpreceive] on the port the device picks
    }
    async start() {
        await new Promise((res) => this.out.bind(0, "127.0.0.1", res));
        this.max.send("bang");
        this.max.send("sr", SR);
        // The user types the engine's address into the device's Host and Port fields.
        this.max.send("engine_host", "localhost");
        this.max.send("engine_port", PORT);
        await this.pump();
    }
    async pump() {
        for (const [sel, port] of this.max.take(1)) {
            assert.equal(sel, "port");
            if (this.in) this.in.close();
            this.in = dgram.createSocket("udp4");
            this.in.on("message", (buf) => {
                for (const m of osc.decodePacket(buf)) {
                    this.replies.push(m);
                    this.max.send(m.address, ...m.args.map((a) => a.v));
                }
                this.pump();
            });
            await new Promise((res) => this.in.bind(port, "127.0.0.1", res));
        }
        for (const atoms of this.max.take(0)) {
            // [udpsend] takes `host H` and `port P` as settings, not as messages to send.
            if (atoms[0] === "host") { this.target.host = atoms[1]; continue; }
            if (atoms[0] === "port") { this.target.port = atoms[1]; continue; }
            const m = maxToOsc(atoms);
            const bytes = osc.encodeMessage(m.address, m.args);
            this.wire.push(osc.decodeMessage(bytes));
            const { host, port } = this.target;
            await new Promise((res, rej) => this.out.send(bytes, port, host, (e) => e ? rej(e) : res()));
        }
    }
    async until(pred, what, ms) {
        const t0 = Date.now();
        while (!pred()) {
            if (Date.now() - t0 > (ms || 60000)) throw new Error("timed out waiting for " + what + "; status: " +
                JSON.stringify(this.max.ui("status").slice(-3)));
            await new Promise((r) => setTimeout(r, 20));
        }
    }
    async connect() {
        this.max.tick(2000);
        await this.pump();
        await this.until(() => this.max.ui("engine").some((t) => /^Engine: dsp/.test(t)), "status reply");
    }
    finalReply(id) { return this.replies.find((m) => (m.address === "/segue/done" || m.address === "/segue/error") && m.args[0].v === id); }
    async run(button) {
        this.max.send(button);
        await this.pump();
        const req = this.wire[this.wire.length - 1];
        assert.notEqual(req.address, "/segue/status", "a request was sent: " + JSON.stringify(this.max.ui("status").slice(-1)));
        await this.until(() => this.finalReply(req.args[0].v), "done/error");
        return { req, reply: this.finalReply(req.args[0].v) };
    }
    close() { this.out.close(); if (this.in) this.in.close(); }
}

function makeSet() {
    // Unwarped clip of the source at bar 2 (beat 3.5), trimmed to start at file 0.5 s, 12 s long;
    // loop brace over bars 3-4 (beats 7-14).
    const info = readWavInfo(SRC);
    return new LiveSet({ version: [12, 2, 0], tempo: TEMPO, num: 7, den: 8, loop_start: 7, loop_length: 7,
        tracks: [{ clips: [{ file_path: SRC, start_time: 3.5, end_time: 3.5 + 12 / SPB, loop_start: 0.5, start_marker: 0.5,
                              sample_rate: info.sr, sample_length: info.frames }] }] });
}

function option(msg, key) {
    for (let i = 2; i < msg.args.length - 1; i++) if (msg.args[i].t === "s" && msg.args[i].v === key) return msg.args[i + 1];
}

test("e2e: inpaint under the loop brace, 2 variations, 87.5 BPM 7/8, 44.1 kHz source into a 48 kHz project", { skip }, async () => {
    const set = makeSet();
    const rig = new Rig(set);
    try {
        await rig.start();
        await rig.connect();
        rig.max.send("variations", 2);
        const { req, reply } = await rig.run("inpaint");
        assert.equal(reply.address, "/segue/done", JSON.stringify(reply.args));
        // Times went out as float32, as Max sends them; the device planned with those exact values.
        assert.deepEqual(req.args.slice(0, 4).map((a) => a.t), ["s", "s", "f", "f"]);
        const [start, end] = [req.args[2].v, req.args[3].v];
        assert.ok(Math.abs(start - (0.5 + 3.5 * SPB)) < 1e-6 && Math.abs(end - (0.5 + 10.5 * SPB)) < 1e-6);
        assert.deepEqual(option(req, "sr"), { t: "i", v: SR });
        assert.deepEqual(option(req, "sig"), { t: "s", v: "7/8" });
        const paths = [reply.args[1].v, reply.args[4].v];
        // The device asks for f32 replies: Max's [udpreceive] need not decode OSC float64.
        assert.deepEqual(reply.args.map((a) => a.t), ["s", "s", "f", "i", "s"]);
        const expected = Math.round((end - start) * SR);
        assert.ok(Math.abs(expected - 230400) <= 1); // 2 bars of 7/8 at 87.5 BPM = 4.8 s
        for (const p of paths) {
            const info = readWavInfo(p);
            assert.equal(info.sr, SR);
            assert.equal(info.frames, expected, p);
            assert.equal(info.format, 3); // float
        }
        assert.ok(Math.abs(reply.args[2].v - Math.fround(expected / SR)) < 1e-9);
        // Both variations landed over the brace: main lane and a take lane, warp off, 7 beats long.
        const creates = set.calls("create_audio_clip");
        assert.deepEqual(creates.map((c) => [c.path, c.args[0]]),
                         [["live_set tracks 0", paths[0]], ["live_set tracks 0 take_lanes 0", paths[1]]]);
        for (const c of creates) assert.ok(Math.abs(c.args[1] - 7) * SPB * SR < 0.5, "position " + c.args[1]);
        const made = set.tracks[0].clips.find((c) => c.file_path === paths[0]);
        assert.equal(made.warping, 0);
        const beats = set.get({ kind: "clip", clip: made }, "end_time")[0] - made.start_time;
        assert.ok(Math.abs(beats - 7) * SPB * SR <= 1, "clip spans the brace: " + beats + " beats");
        assert.match(rig.max.ui("status").slice(-1)[0], /2 clip\(s\) in the Arrangement/);
    } finally { rig.close(); }
});

test("e2e: continue 2 bars from the clip end: exactly 230400 samples at 48 kHz, placed at the clip end", { skip }, async () => {
    const set = makeSet();
    const rig = new Rig(set);
    try {
        await rig.start();
        await rig.connect();
        rig.max.send("bars", 2);
        const { req, reply } = await rig.run("continue_clip");
        assert.equal(req.address, "/segue/continue");
        assert.equal(reply.address, "/segue/done", JSON.stringify(reply.args));
        assert.equal(req.args[2].t, "f");
        assert.ok(Math.abs(req.args[2].v - 12.5) < 1e-6);
        assert.deepEqual(req.args[3], { t: "i", v: 2 });
        const info = readWavInfo(reply.args[1].v);
        assert.equal(info.sr, SR);
        assert.equal(info.frames, 230400);
        const [c] = set.calls("create_audio_clip");
        assert.ok(Math.abs(c.args[1] - (3.5 + 12 / SPB)) * SPB * SR < 0.5);
    } finally { rig.close(); }
});

test("e2e: generate on the dsp backend is refused and the UI says why", { skip }, async () => {
    const rig = new Rig(makeSet());
    try {
        await rig.start();
        await rig.connect();
        rig.max.send("prompt", "airy", "pads");
        const { reply } = await rig.run("generate");
        assert.equal(reply.address, "/segue/error");
        assert.equal(reply.args[1].v, "unsupported");
        assert.match(rig.max.ui("status").slice(-1)[0], /\[unsupported\]/);
    } finally { rig.close(); }
});

// Five minutes into a file, float32 seconds step by 30.5 µs (1.46 samples at
// 48 kHz): the engine must write exactly the length the device predicted from
// the float32 values, and the clip must sit where those values put it.
const LONG = process.env.SEGUE_E2E_LONG_SRC || "";
test("e2e: inpaint 5 minutes into a file: float32 times, predicted length and placement hold", { skip: skip || (!LONG && "set SEGUE_E2E_LONG_SRC") }, async () => {
    const info = readWavInfo(LONG);
    const L0 = 300.0371; // file second at the clip's left edge
    const set = new LiveSet({ version: [12, 2, 0], tempo: TEMPO, num: 7, den: 8, loop_start: 7, loop_length: 7,
        tracks: [{ clips: [{ file_path: LONG, start_time: 3.5, end_time: 3.5 + 20 / SPB, loop_start: L0, start_marker: L0,
                              sample_rate: info.sr, sample_length: info.frames }] }] });
    const rig = new Rig(set);
    try {
        await rig.start();
        await rig.connect();
        const { req, reply } = await rig.run("inpaint");
        assert.equal(reply.address, "/segue/done", JSON.stringify(reply.args));
        const exactStart = L0 + 3.5 * SPB, exactEnd = L0 + 10.5 * SPB;
        const [start, end] = [req.args[2].v, req.args[3].v];
        assert.equal(start, Math.fround(exactStart));
        assert.notEqual(start, exactStart); // the rounding is real here
        const predicted = Math.round((end - start) * SR);
        const out = readWavInfo(reply.args[1].v);
        assert.equal(out.sr, SR);
        assert.equal(out.frames, predicted);
        assert.ok(Math.abs(predicted - 230400) <= 2);
        const [c] = set.calls("create_audio_clip");
        // placed at the song position of the float32 start, within half a float32 step of the brace
        assert.ok(Math.abs(c.args[1] - (3.5 + (start - L0) / SPB)) < 1e-9);
        assert.ok(Math.abs(c.args[1] - 7) * SPB <= 2 ** -15 / 2);
    } finally { rig.close(); }
});
