// A stand-in for Max's LiveAPI: a small model of a Live set, addressed by LOM
// paths, that records every call and set. It behaves like Live where the
// device depends on it:
// - functions a Live version lacks do nothing (Live prints an error), so the
//   device's fallbacks are exercised: Track/TakeLane.create_audio_clip need
//   12.2, ClipSlot.create_audio_clip 12.0.5;
// - clips created from files read the real file's header (rate, length) and
//   start warped, at Live's guess of 120 BPM for the file, as Live does; with
//   Warp off they last the file's duration at the song tempo;
// - get() returns arrays of atoms, warp_markers a JSON string.
"use strict";
const { readWavInfo } = require("../node/wav.js");

function newClip(props) {
    return Object.assign({
        is_audio_clip: 1, name: "", file_path: "", warping: 0, looping: 0, loop_start: 0, loop_end: 0,
        start_marker: 0, end_marker: 0, sample_rate: 44100, sample_length: 0, pitch_coarse: 0, pitch_fine: 0, gain: 0.4,
        start_time: 0, end_time: 0, warp_markers: [],
    }, props);
}

class LiveSet {
    constructor(opts) {
        this.version = opts.version || [12, 2, 0];
        this.tempo = opts.tempo; this.num = opts.num; this.den = opts.den;
        this.loop_start = opts.loop_start || 0; this.loop_length = opts.loop_length || 16;
        this.tracks = (opts.tracks || [{}]).map((t) => ({
            clips: (t.clips || []).map(newClip),
            lanes: [],
            slots: Array.from({ length: t.slots === undefined ? 8 : t.slots }, (_, i) =>
                ({ clip: t.sessionClips && t.sessionClips[i] ? newClip(t.sessionClips[i]) : null })),
        }));
        this.deviceTrack = opts.deviceTrack === undefined ? 0 : opts.deviceTrack;
        this.inRack = !!opts.inRack; // the device sits in an Audio Effect Rack's chain on that track
        this.detailClip = opts.detailClip || null; // LOM path or null
        this.missing = new Set(opts.missing || []); // e.g. "track.create_audio_clip": absent despite the version
        // A Mac Live wants /Volumes/<drive>/... paths in create_audio_clip (LOM reference); other
        // paths are refused (Live prints an error, nothing is created). file_path reads back POSIX.
        this.os = opts.os || "linux";
        this.bootVolume = opts.bootVolume || "Macintosh HD";
        this.cuePoints = opts.cuePoints || []; // song beats
        this.log = [];
    }
    atLeast(a, b, c) {
        const v = this.version;
        return v[0] !== a ? v[0] > a : v[1] !== b ? v[1] > b : v[2] >= c;
    }
    // A clip made from a file, as Live makes it: warped, at a guessed tempo.
    // The file a path names, as Live resolves it; null when Live would refuse the path.
    realFile(path) {
        if (this.os !== "macintosh") return path;
        if (!path.startsWith("/Volumes/")) return null;
        const boot = "/Volumes/" + this.bootVolume + "/";
        return path.startsWith(boot) ? path.slice(boot.length - 1) : path;
    }
    clipFromFile(path, position) {
        path = this.realFile(path);
        if (path === null) return null;
        const info = readWavInfo(path);
        return newClip({ file_path: path, sample_rate: info.sr, sample_length: info.frames, warping: 1,
                         start_time: position, loop_start: 0, start_marker: 0, guessedBpm: 120 });
    }
    clipLengthBeats(c) {
        const seconds = c.sample_length / c.sample_rate;
        return c.warping && c.guessedBpm ? seconds * c.guessedBpm / 60 : seconds * this.tempo / 60;
    }
    resolve(path) {
        const w = path.trim().split(/\s+/);
        if (path === "live_app") return { kind: "app" };
        if (path === "live_set") return { kind: "song" };
        const cue = /^live_set cue_points (\d+)$/.exec(path);
        if (cue) return +cue[1] < this.cuePoints.length ? { kind: "cue", time: this.cuePoints[+cue[1]], path } : null;
        if (path === "live_set view detail_clip") return this.detailClip ? this.resolve(this.detailClip) : null;
        if (path === "this_device canonical_parent") {
            if (this.deviceTrack === null) return null;
            // In a rack the device's parent is a chain of the rack device on the track (LOM).
            if (this.inRack) return { kind: "chain", path: "live_set tracks " + this.deviceTrack + " devices 0 chains 0" };
            return this.resolve("live_set tracks " + this.deviceTrack);
        }
        const up = /^(live_set tracks \d+)( devices \d+)( chains \d+)? canonical_parent$/.exec(path);
        if (up) return up[3] ? { kind: "device", path: up[1] + up[2] } : this.resolve(up[1]);
        if (w[0] !== "live_set" || w[1] !== "tracks") return null;
        const ti = +w[2], track = this.tracks[ti];
        if (!track) return null;
        const base = "live_set tracks " + ti;
        if (w.length === 3) return { kind: "track", track, path: base };
        if (w[3] === "arrangement_clips" && w.length === 5) {
            const c = track.clips[+w[4]];
            return c ? { kind: "clip", clip: c, path: base + " arrangement_clips " + w[4] } : null;
        }
        if (w[3] === "take_lanes") {
            const lane = track.lanes[+w[4]];
            if (!lane) return null;
            const lp = base + " take_lanes " + w[4];
            if (w.length === 5) return { kind: "lane", lane, track, path: lp };
            if (w[5] === "arrangement_clips" && lane.clips[+w[6]])
                return { kind: "clip", clip: lane.clips[+w[6]], path: lp + " arrangement_clips " + w[6] };
            return null;
        }
        if (w[3] === "clip_slots") {
            const slot = track.slots[+w[4]];
            if (!slot) return null;
            const sp = base + " clip_slots " + w[4];
            if (w.length === 5) return { kind: "slot", slot, track, path: sp };
            if (w[5] === "clip" && slot.clip) return { kind: "clip", clip: slot.clip, path: sp + " clip" };
        }
        return null;
    }
    // The factory the device code takes.
    api() {
        const set = this;
        let nextId = 1;
        return function (path) {
            const o = set.resolve(path);
            return {
                id: o ? nextId++ : 0,
                path: o ? "\"" + (o.path || path) + "\"" : "",
                get(prop) { set.log.push({ op: "get", path, prop }); return set.get(o, prop); },
                set(prop, value) { set.log.push({ op: "set", path, prop, value }); set.setProp(o, prop, value); },
                getcount(child) { return set.count(o, child); },
                call(fn, ...args) { set.log.push({ op: "call", path, fn, args }); return set.call(o, fn, args); },
            };
        };
    }
    get(o, prop) {
        if (!o) return [0];
        if (o.kind === "song") {
            const m = { tempo: this.tempo, signature_numerator: this.num, signature_denominator: this.den,
                        loop_start: this.loop_start, loop_length: this.loop_length };
            return [m[prop] === undefined ? 0 : m[prop]];
        }
        if (o.kind === "slot" && prop === "has_clip") return [o.slot.clip ? 1 : 0];
        if (o.kind === "cue" && prop === "time") return [o.time];
        if (o.kind === "clip") {
            const c = o.clip;
            // Clips the device created span their whole file; others keep their given edges.
            if (prop === "end_time") return [c.guessedBpm ? c.start_time + this.clipLengthBeats(c) : c.end_time];
            if (prop === "warp_markers") return [JSON.stringify({ warp_markers: c.warp_markers })];
            return [c[prop] === undefined ? 0 : c[prop]];
        }
        return [0];
    }
    setProp(o, prop, value) { if (o && o.kind === "clip") o.clip[prop] = value; }
    count(o, child) {
        if (!o) return 0;
        if (o.kind === "song" && child === "cue_points") return this.cuePoints.length;
        if (o.kind === "track") {
            if (child === "arrangement_clips") return o.track.clips.length;
            if (child === "take_lanes") return o.track.lanes.length;
            if (child === "clip_slots") return o.track.slots.length;
        }
        if (o.kind === "lane" && child === "arrangement_clips") return o.lane.clips.length;
        return 0;
    }
    call(o, fn, args) {
        if (!o) return undefined;
        if (o.kind === "app") {
            if (fn === "get_major_version") return [this.version[0]];
            if (fn === "get_minor_version") return [this.version[1]];
            if (fn === "get_bugfix_version") return [this.version[2]];
        }
        if (o.kind === "song" && fn === "create_scene") { for (const t of this.tracks) t.slots.push({ clip: null }); return; }
        if (o.kind === "track" && fn === "create_audio_clip" && this.atLeast(12, 2, 0) && !this.missing.has("track.create_audio_clip")) {
            const c = this.clipFromFile(args[0], args[1]);
            if (!c) return;
            o.track.clips.push(c);
            o.track.clips.sort((a, b) => a.start_time - b.start_time);
            return;
        }
        if (o.kind === "track" && fn === "create_take_lane" && this.atLeast(12, 2, 0)) { o.track.lanes.push({ clips: [] }); return; }
        if (o.kind === "lane" && fn === "create_audio_clip" && this.atLeast(12, 2, 0)) {
            const c = this.clipFromFile(args[0], args[1]);
            if (c) o.lane.clips.push(c);
            return;
        }
        if (o.kind === "slot" && fn === "create_audio_clip" && this.atLeast(12, 0, 5) && !o.slot.clip) {
            o.slot.clip = this.clipFromFile(args[0], 0);
            return;
        }
        return undefined; // unknown in this version: Live prints an error, nothing happens
    }
    calls(fn) { return this.log.filter((e) => e.op === "call" && (!fn || e.fn === fn)); }
}

module.exports = { LiveSet, newClip };
