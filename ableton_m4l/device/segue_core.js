// Segue for Live: pure logic shared by the Max [js] device and the Node tests.
//
// ES5 only: Max's classic [js] runs an old SpiderMonkey (no let/const, arrow
// functions, template strings or Math.fround). Loaded with require("segue_core")
// in Max (CommonJS-style `exports`, supported by [js] since Max 7) and with
// require("./segue_core.js") in Node. Nothing here touches LiveAPI or the
// network: give it plain numbers, get plain objects back.
//
// Units: song and clip times are in beats (quarter notes, as the LOM counts
// them); file positions are seconds in the clip's audio file.

var PROTOCOL_PORT = 9137;

// ---------------------------------------------------------------- float32

// Max's [udpsend] writes every Max float as an OSC 'f' (float32). We round our
// numbers the same way before sending so the device knows exactly what the
// engine will read (and can place the result where the engine computed it).
// Same result as ES2015 Math.fround (round half to even), which old [js] lacks.
function fround32(x) {
    if (x === 0 || x !== x || x === Infinity || x === -Infinity) return x;
    var sign = x < 0 ? -1 : 1;
    var a = Math.abs(x);
    var e = Math.floor(Math.log(a) / Math.LN2);
    var p = Math.pow(2, e);
    if (p > a) { e -= 1; p /= 2; } else if (p * 2 <= a) { e += 1; p *= 2; }
    if (e > 127) return sign * Infinity;
    var ulp = Math.pow(2, Math.max(e, -126) - 23);
    var m = a / ulp; // exact: ulp is a power of two
    var r = Math.floor(m);
    var frac = m - r;
    if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
    return sign * r * ulp;
}

// Spacing of float32 values around x, in seconds: the worst-case rounding is half.
function float32Step(x) {
    var a = Math.abs(x);
    if (a === 0) return Math.pow(2, -149);
    var e = Math.floor(Math.log(a) / Math.LN2);
    if (Math.pow(2, e) > a) e -= 1; else if (Math.pow(2, e + 1) <= a) e += 1;
    return Math.pow(2, Math.max(e, -126) - 23);
}

// ---------------------------------------------------------------- grid

function barQuarters(num, den) { return num * 4 / den; }

function beatsToSeconds(beats, tempo) { return beats * 60 / tempo; }
function secondsToBeats(seconds, tempo) { return seconds * tempo / 60; }

// Exact output length (samples) the engine writes for a continuation/generation.
function barsToSamples(bars, num, den, bpm, sr) {
    return Math.round(bars * barQuarters(num, den) * 60 / bpm * sr);
}

function spanToSamples(start, end, sr) { return Math.round((end - start) * sr); }

function posMod(a, m) { var r = a % m; return r < 0 ? r + m : r; }

// ---------------------------------------------------------------- source mapping

// Relative tolerance for "this warp segment plays at the song tempo".
var WARP_TEMPO_TOLERANCE = 1e-6;

function fail(code, message) { return { ok: false, code: code, message: message }; }

function copyWith(obj, key, value) {
    var out = {};
    for (var k in obj) if (obj.hasOwnProperty(k)) out[k] = obj[k];
    out[key] = value;
    return out;
}

function fmt(x, digits) { return Number(x).toFixed(digits === undefined ? 3 : digits); }

// Piecewise-linear beat -> seconds through warp markers (as the LOM documents
// Live doing it), extrapolating beyond the ends with the outer segments.
function warpBeatToSeconds(markers, beat) {
    var i = 0;
    while (i < markers.length - 2 && beat > markers[i + 1].beat_time) i++;
    var a = markers[i], b = markers[i + 1];
    return a.sample_time + (beat - a.beat_time) * (b.sample_time - a.sample_time) / (b.beat_time - a.beat_time);
}

// Decide whether we can read the clip's audio straight from its file and, if
// so, return how song beats map to file seconds.
//
// clip: {start_time, end_time, warping, looping, loop_start, loop_end,
//        start_marker, file_path, sample_rate, sample_length, pitch_coarse,
//        pitch_fine, gain, warp_markers: [{beat_time, sample_time}], is_audio_clip}
// Supported: unwarped clips at natural pitch, and warped clips whose every warp
// segment plays at the song tempo (the file plays at natural speed). Anything
// else is refused with a message telling the user what to do.
function sourceMapping(clip, song) {
    if (!clip) return fail("no_clip", "No audio clip found on this track in the Arrangement.");
    if (clip.is_audio_clip === 0 || clip.is_audio_clip === false)
        return fail("not_audio", "The clip is a MIDI clip: Segue works on audio clips.");
    if (!clip.file_path) return fail("no_file", "The clip has no audio file (Live reports no file_path).");
    var tempo = song.tempo;
    var secPerBeat = 60 / tempo;
    var duration = clip.sample_length > 0 && clip.sample_rate > 0 ? clip.sample_length / clip.sample_rate : null;
    var originBeat, originSec;
    if (!clip.warping) {
        if (clip.pitch_coarse || clip.pitch_fine)
            return fail("transposed", "The clip is unwarped and transposed, so it plays at another speed than its file. " +
                        "Set Transpose and Detune to 0, or Consolidate the clip (Cmd/Ctrl+J) first.");
        // Unwarped clips cannot loop; loop_start is the clip start in file seconds (LOM).
        originBeat = clip.start_time;
        originSec = clip.loop_start;
    } else {
        // Warped, Transpose/Detune change the pitch only: the engine works on the file's pitch and the
        // result lands unwarped, so it would sit at the wrong pitch in the middle of the clip.
        if (clip.pitch_coarse || clip.pitch_fine)
            return fail("transposed", "The clip is transposed (Transpose " + fmt(clip.pitch_coarse || 0, 0) + " st, Detune " +
                        fmt(clip.pitch_fine || 0, 0) + " ct), so it does not play its file's pitch. Set Transpose and " +
                        "Detune to 0, or Consolidate the clip (Cmd/Ctrl+J) first.");
        var m = clip.warp_markers;
        if (!m || m.length < 2)
            return fail("warp_unknown", "The clip is warped and its warp markers could not be read (Live 11 or later is needed). " +
                        "Turn Warp off or Consolidate the clip (Cmd/Ctrl+J), then try again.");
        for (var i = 0; i + 1 < m.length; i++) {
            var db = m[i + 1].beat_time - m[i].beat_time, ds = m[i + 1].sample_time - m[i].sample_time;
            if (!(db > 0) || !(ds > 0))
                return fail("warp_unknown", "The clip's warp markers are not increasing; Consolidate the clip (Cmd/Ctrl+J) first.");
            var segBpm = 60 * db / ds;
            if (Math.abs(segBpm - tempo) > WARP_TEMPO_TOLERANCE * tempo)
                return fail("warped_other_tempo",
                    "The clip is warped at " + fmt(segBpm, 2) + " BPM but the song runs at " + fmt(tempo, 2) +
                    " BPM, so its file does not play at natural speed. Set the clip's tempo to the song tempo, turn Warp off, " +
                    "or Consolidate the clip (Cmd/Ctrl+J), then try again.");
        }
        // Clip beat shown at the clip's left edge: the start marker (loop_start
        // equals it for unlooped clips; for looped clips playback starts there).
        var startBeat = clip.looping ? clip.start_marker : clip.loop_start;
        originBeat = clip.start_time;
        originSec = warpBeatToSeconds(m, startBeat);
    }
    var loopEndBeat = null;
    if (clip.warping && clip.looping) {
        // Song beat where the first loop pass ends; after it the audio repeats.
        loopEndBeat = clip.start_time + (clip.loop_end - clip.start_marker);
    }
    return {
        ok: true,
        tempo: tempo,
        duration: duration,
        // Every supported clip plays its file at natural speed: one song beat
        // lasts 60/tempo file seconds everywhere, so the mapping is affine.
        toFile: function (beat) { return originSec + (beat - originBeat) * secPerBeat; },
        toSong: function (sec) { return originBeat + (sec - originSec) / secPerBeat; },
        validUntil: loopEndBeat
    };
}

// A bar line in file seconds, folded into [0, bar) so it is small (float32
// keeps it to well under a sample) and never negative. Bars are counted from
// song beat 0 with the current signature (Live's signature changes are not
// read: the LOM exposes only the current one).
function downbeatInFile(map, song) {
    var barBeats = barQuarters(song.num, song.den);
    var barSec = barBeats * 60 / song.tempo;
    return posMod(map.toFile(0), barSec);
}

function checkSpanInFile(map, s, e) {
    var eps = 1e-9;
    if (s < -eps) return fail("outside_file", "The span starts before the clip's audio file begins.");
    if (map.duration !== null && e > map.duration + 1e-6)
        return fail("outside_file", "The span runs past the end of the clip's audio file (" + fmt(map.duration) + " s).");
    return null;
}

// ---------------------------------------------------------------- request ids

var _idCounter = 0;
function newRequestId(rand) {
    _idCounter += 1;
    var r = Math.floor((rand === undefined ? Math.random() : rand) * 0x7fffffff).toString(16);
    // Starts with letters so Max never turns the id into a number atom.
    return "m4l-" + r + "-" + _idCounter;
}

// ---------------------------------------------------------------- requests

// Typed OSC argument: t is 's' | 'i' | 'f' (what Max's udpsend writes).
function S(v) { return { t: "s", v: String(v) }; }
function I(v) { return { t: "i", v: Math.round(v) }; }
function F(v) { return { t: "f", v: fround32(v) }; }

function sigString(song) { return song.num + "/" + song.den; }

function commonOptions(song, opts) {
    var a = [S("bpm"), F(song.tempo), S("sig"), S(sigString(song)), S("sr"), I(song.sr)];
    if (opts.seed !== undefined && opts.seed !== null) a.push(S("seed"), I(opts.seed));
    if (opts.variations && opts.variations > 1) a.push(S("variations"), I(opts.variations));
    if (opts.prompt) a.push(S("prompt"), S(opts.prompt));
    if (opts.backend) a.push(S("backend"), S(opts.backend));
    if (opts.hit === "remove") a.push(S("hit"), S("remove")); // "replace" is the engine's default
    if (opts.regions) a.push(S("regions"), S(opts.regions));
    if (opts.replyPort) a.push(S("reply_port"), I(opts.replyPort));
    // Max's [udpreceive] may not decode OSC float64: ask for float32-only replies.
    a.push(S("f32"), I(1));
    if (opts.token) a.push(S("token"), S(opts.token));
    return a;
}

function checkCommon(song, opts) {
    if (!(song.tempo >= 20 && song.tempo <= 400)) return fail("bad_tempo", "Song tempo " + song.tempo + " is outside 20-400 BPM.");
    if (!(song.sr >= 8000 && song.sr <= 192000))
        return fail("no_sr", "No sample rate yet: turn Live's audio engine on (Preferences > Audio).");
    var v = opts.variations || 1;
    if (v < 1 || v > 4 || v !== Math.floor(v)) return fail("bad_variations", "Variations must be 1 to 4.");
    return null;
}

// Every plan carries: request {address, args}, expected output length in
// samples (exact: same float32 inputs and formula as the engine), where the
// result lands (song beats) and how long it is there (beats).
function finishPlan(kind, id, address, args, song, positionBeats, samples, extra) {
    var plan = {
        ok: true, kind: kind, id: id,
        request: { address: address, args: args },
        sr: song.sr,
        expectedSamples: samples,
        positionBeats: positionBeats,
        tempo: song.tempo,
        lengthBeats: secondsToBeats(samples / song.sr, song.tempo)
    };
    for (var k in extra) if (extra.hasOwnProperty(k)) plan[k] = extra[k];
    return plan;
}

// Inpaint: the part of the clip under the loop brace (the classic LOM has no
// arrangement time selection; the loop brace stands in for it).
function planInpaint(song, clip, opts) {
    opts = opts || {};
    var bad = checkCommon(song, opts);
    if (bad) return bad;
    var map = sourceMapping(clip, song);
    if (!map.ok) return map;
    var r0 = Math.max(song.loop_start, clip.start_time);
    var r1 = Math.min(song.loop_start + song.loop_length, clip.end_time);
    if (!(r1 - r0 > 1e-6))
        return fail("no_overlap", "The loop brace does not overlap the clip: drag the loop brace over the part to regenerate.");
    if (map.validUntil !== null && r1 > map.validUntil + 1e-9)
        return fail("in_loop_repeat", "The span reaches into a repeat of the looped clip: Consolidate it (Cmd/Ctrl+J) first.");
    var s = map.toFile(r0), e = map.toFile(r1);
    var out = checkSpanInFile(map, s, e);
    if (out) return out;
    var s32 = fround32(s), e32 = fround32(e);
    if (s32 < 0) s32 = 0;
    if (map.duration !== null && e32 > map.duration) e32 -= float32Step(e32);
    var id = opts.id || newRequestId();
    if (opts.regionBeats) opts = copyWith(opts, "regions", regionsOption(map, opts.regionBeats, s32, e32));
    var args = [S(id), S(clip.file_path), F(s32), F(e32)]
        .concat([S("downbeat"), F(downbeatInFile(map, song))])
        .concat(commonOptions(song, opts));
    // Place where the engine's (float32) start really is, so the new audio lines
    // up with the original to the sample; it differs from the brace edge by at
    // most half a float32 step (see docs/ableton.md).
    return finishPlan("inpaint", id, "/segue/inpaint", args, song, map.toSong(s32),
                      spanToSamples(s32, e32, song.sr),
                      { fileStart: s32, fileEnd: e32, braceStart: r0, braceEnd: r1, gain: clip.gain });
}

// Continue: N bars from the clip's end.
function planContinue(song, clip, bars, opts) {
    opts = opts || {};
    var bad = checkCommon(song, opts);
    if (bad) return bad;
    if (!(bars >= 1 && bars <= 32)) return fail("bad_bars", "Bars must be 1 to 32.");
    var map = sourceMapping(clip, song);
    if (!map.ok) return map;
    if (map.validUntil !== null && clip.end_time > map.validUntil + 1e-9)
        return fail("in_loop_repeat", "The clip ends inside a loop repeat: Consolidate it (Cmd/Ctrl+J) first.");
    var at = map.toFile(clip.end_time);
    var out = checkSpanInFile(map, at, at);
    if (out) return out;
    if (!(at > 0)) return fail("outside_file", "The clip has no audio before its end to continue from.");
    var at32 = fround32(at);
    if (map.duration !== null && at32 > map.duration) at32 -= float32Step(at32);
    var id = opts.id || newRequestId();
    var args = [S(id), S(clip.file_path), F(at32), I(bars)]
        .concat([S("downbeat"), F(downbeatInFile(map, song))])
        .concat(commonOptions(song, opts));
    return finishPlan("continue", id, "/segue/continue", args, song, map.toSong(at32),
                      barsToSamples(bars, song.num, song.den, fround32(song.tempo), song.sr),
                      { fileAt: at32, clipEnd: clip.end_time, gain: clip.gain });
}

// Generate: N bars from a prompt, landing at the loop brace start.
function planGenerate(song, bars, opts) {
    opts = opts || {};
    var bad = checkCommon(song, opts);
    if (bad) return bad;
    if (!(bars >= 1 && bars <= 32)) return fail("bad_bars", "Bars must be 1 to 32.");
    if (!opts.prompt) return fail("no_prompt", "Type a prompt first.");
    var id = opts.id || newRequestId();
    var args = [S(id), I(bars)].concat(commonOptions(song, opts));
    return finishPlan("generate", id, "/segue/generate", args, song, song.loop_start,
                      barsToSamples(bars, song.num, song.den, fround32(song.tempo), song.sr), {});
}

function simpleRequest(address, id, replyPort) {
    var args = [S(id)];
    if (replyPort) args.push(S("reply_port"), I(replyPort));
    return { address: address, args: args };
}

// Flatten typed args into the atom list Max sends out of [js] to [udpsend]:
// the address is the message selector; numbers go as-is (integers as ints,
// others as floats, which udpsend writes as float32); strings as symbols.
function toMaxMessage(request) {
    var out = [request.address];
    for (var i = 0; i < request.args.length; i++) out.push(request.args[i].v);
    return out;
}

// ---------------------------------------------------------------- replies

// Reply from [udpreceive] as (address, [values]). Only strings and the int sr
// are relied on: `seconds` (float64) is read when present but never needed,
// because the plan already knows the exact length.
function parseReply(address, values) {
    var id = values.length > 0 ? String(values[0]) : "";
    switch (address) {
    case "/segue/accepted":
        return { type: "accepted", id: id, position: Number(values[1]) };
    case "/segue/progress":
        return { type: "progress", id: id, fraction: Number(values[1]), stage: values.length > 2 ? String(values[2]) : "" };
    case "/segue/done":
        var paths = [String(values[1])];
        for (var i = 4; i < values.length; i++) paths.push(String(values[i]));
        return { type: "done", id: id, paths: paths, seconds: Number(values[2]), sr: Number(values[3]) };
    case "/segue/error":
        return { type: "error", id: id, code: String(values[1]), message: values.length > 2 ? String(values[2]) : "" };
    case "/segue/pong":
        return { type: "pong", id: id, version: String(values[1]), backend: String(values[2]) };
    case "/segue/status":
        return { type: "status", id: id, state: String(values[1]), backend: String(values[2]),
                 queued: Number(values[3]), running: values.length > 4 ? String(values[4]) : "" };
    default:
        return { type: "unknown", id: id, address: address };
    }
}

// Human text for an error reply, with the fix where there is one. userCancelled: the
// user pressed Cancel (a `cancelled` the user did not ask for is the engine's, e.g. at shutdown).
function errorText(code, message, userCancelled) {
    if (code === "cancelled" && !userCancelled)
        return "The engine cancelled the request (" + (message || "no reason given") + "): start it again " +
               "(segue serve) and retry. [cancelled]";
    if (code === "lost")
        return "The engine's answer was lost and it cannot send it again: try again. [lost] " + (message || "");
    var hints = {
        unsupported: "This engine's backend cannot do that (the dsp backend cannot Generate).",
        busy: "The engine's queue is full: wait, or Cancel something.",
        source_not_found: "The engine cannot see the clip's file (is the engine on this computer?).",
        insufficient_context: "Too little audio around the span: widen the clip or shorten the span.",
        bad_out: "The engine refused the output folder.",
        cancelled: "Cancelled."
    };
    return (hints[code] ? hints[code] + " " : "") + "[" + code + "] " + (message || "");
}

var ENGINE_HELP = "Engine not running. Start it in a terminal: segue serve   (default port " + PROTOCOL_PORT + ")";

// The same, for the host and port set in the device.
function engineHelp(host, port) {
    var cmd = "segue serve" + (port && port !== PROTOCOL_PORT ? " --port " + port : "");
    return "Engine not running at " + (host || "127.0.0.1") + ":" + (port || PROTOCOL_PORT) +
           ". Start it in a terminal: " + cmd;
}

// ---------------------------------------------------------------- paths handed to Live

// Live's LOM reference (Track/TakeLane/ClipSlot.create_audio_clip) asks for an absolute
// path that, on a Mac, starts with /Volumes/<drive name>/. The engine reports POSIX
// paths: on the start-up disk they lack that prefix (/Users/...), on other drives they
// already have it (/Volumes/Ext/...). os: Max's max.os ("macintosh" | "windows");
// bootVolume: the start-up disk's name (e.g. "Macintosh HD").
function livePath(path, os, bootVolume) {
    path = String(path);
    if (os !== "macintosh" || path.charAt(0) !== "/" || path.indexOf("/Volumes/") === 0) return path;
    return "/Volumes/" + (bootVolume || "Macintosh HD") + path;
}

// The POSIX form of a path Live reports (either form), for comparing with ours.
function posixPath(path, bootVolume) {
    path = String(path);
    var prefix = "/Volumes/" + (bootVolume || "Macintosh HD") + "/";
    return path.indexOf(prefix) === 0 ? path.substring(prefix.length - 1) : path;
}

// The start-up disk's name from a Max-format path ("Macintosh HD:/Users/...") such as
// this.patcher.filepath, or "" when it cannot tell.
function volumeOfMaxPath(maxPath) {
    var m = /^([^:\/]+):\//.exec(String(maxPath || ""));
    return m ? m[1] : "";
}

// The regions option ("s1:e1,s2:e2", file seconds) for spans given in song beats, each
// clipped to [start, end) of the request; spans outside are dropped. Null when fewer than two.
function regionsOption(map, spansBeats, fileStart, fileEnd) {
    var parts = [];
    for (var i = 0; i < spansBeats.length; i++) {
        var s = Math.max(map.toFile(spansBeats[i][0]), fileStart), e = Math.min(map.toFile(spansBeats[i][1]), fileEnd);
        if (e - s > 1e-6) parts.push(s.toFixed(9) + ":" + e.toFixed(9));
    }
    return parts.length > 1 ? parts.join(",") : null;
}

// ---------------------------------------------------------------- placement

function parseVersion(major, minor, bugfix) {
    return { major: Number(major) || 0, minor: Number(minor) || 0, bugfix: Number(bugfix) || 0 };
}

function versionAtLeast(v, major, minor, bugfix) {
    if (v.major !== major) return v.major > major;
    if (v.minor !== minor) return v.minor > minor;
    return v.bugfix >= bugfix;
}

// Which LOM call writes results back, by Live version:
// - Track.create_audio_clip(file_path, position) and TakeLane.create_audio_clip
//   (arrangement, take lanes): Live 12.2 and later;
// - ClipSlot.create_audio_clip(path) (Session View): Live 12.0.5 and later;
// - otherwise none: show the file so the user can drag it in.
// The executor still verifies each call (clip counts) and falls back down this
// list, so a wrong guess about a version costs a fallback, not a lost result.
function placementMethods(v) {
    var m = [];
    if (versionAtLeast(v, 12, 2, 0)) m.push("arrangement");
    if (versionAtLeast(v, 12, 0, 5)) m.push("session");
    m.push("manual");
    return m;
}

function clipName(kind, k, count) {
    return "Segue " + kind + (count > 1 ? " v" + (k + 1) : "");
}

exports.PROTOCOL_PORT = PROTOCOL_PORT;
exports.ENGINE_HELP = ENGINE_HELP;
exports.engineHelp = engineHelp;
exports.livePath = livePath;
exports.posixPath = posixPath;
exports.volumeOfMaxPath = volumeOfMaxPath;
exports.regionsOption = regionsOption;
exports.fround32 = fround32;
exports.float32Step = float32Step;
exports.barQuarters = barQuarters;
exports.beatsToSeconds = beatsToSeconds;
exports.secondsToBeats = secondsToBeats;
exports.barsToSamples = barsToSamples;
exports.spanToSamples = spanToSamples;
exports.warpBeatToSeconds = warpBeatToSeconds;
exports.sourceMapping = sourceMapping;
exports.downbeatInFile = downbeatInFile;
exports.newRequestId = newRequestId;
exports.planInpaint = planInpaint;
exports.planContinue = planContinue;
exports.planGenerate = planGenerate;
exports.simpleRequest = simpleRequest;
exports.toMaxMessage = toMaxMessage;
exports.parseReply = parseReply;
exports.errorText = errorText;
exports.parseVersion = parseVersion;
exports.versionAtLeast = versionAtLeast;
exports.placementMethods = placementMethods;
exports.clipName = clipName;
