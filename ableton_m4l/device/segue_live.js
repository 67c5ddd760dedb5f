// Segue for Live: reading Live's state and writing results back through the
// Live Object Model. ES5, CommonJS `exports` (see segue_core.js).
//
// Every function takes `api(path)`, a factory returning an object shaped like
// Max's LiveAPI: get(prop) -> array, set(prop, value), call(fn, args...),
// getcount(child) -> int, id, path. In Max it is `new LiveAPI(path)`; the Node
// tests pass a stand-in that models a Live set and records every call.

// Max's require() searches the Max path by module name; Node's wants a path.
var core = typeof max !== "undefined" ? require("segue_core") : require("./segue_core.js");

function first(v) { return (v && typeof v === "object" && v.length !== undefined) ? v[0] : v; }
function num(v) { return Number(first(v)); }
function unquote(s) {
    s = String(s === undefined || s === null ? "" : s);
    if (s.length >= 2 && s.charAt(0) === "\"" && s.charAt(s.length - 1) === "\"") s = s.substring(1, s.length - 1);
    return s;
}
// LiveAPI returns symbols as arrays of atoms; a path with spaces may arrive in
// one atom or (quoted) in several, so join what is there.
function str(v) {
    if (v && typeof v === "object" && v.length !== undefined) v = Array.prototype.join.call(v, " ");
    return unquote(v);
}
function exists(o) { return o && Number(o.id) !== 0; }
function pathOf(o) { return unquote(o.path); }

function readVersion(api) {
    var app = api("live_app");
    return core.parseVersion(first(app.call("get_major_version")), first(app.call("get_minor_version")),
                             first(app.call("get_bugfix_version")));
}

function readSong(api, sr) {
    var s = api("live_set");
    return {
        tempo: num(s.get("tempo")),
        num: num(s.get("signature_numerator")),
        den: num(s.get("signature_denominator")),
        loop_start: num(s.get("loop_start")),
        loop_length: num(s.get("loop_length")),
        sr: sr
    };
}

// Path of the track holding this device ("live_set tracks N"), or null when the
// device sits on a return or the main track (no clips there).
function deviceTrackPath(api) {
    // Inside a rack the parent is a chain (of a rack device, of a track...): walk up to the track.
    var p = "this_device";
    for (var i = 0; i < 16; i++) {
        var t = api(p + " canonical_parent");
        var path = exists(t) ? pathOf(t) : "";
        if (/^live_set tracks \d+$/.test(path)) return path;
        if (!path || /^live_set (return_tracks \d+|master_track)$/.test(path)) return null;
        p = path;
    }
    return null;
}

// warp_markers arrives as a dict; [js] hands it over as JSON text (or, in some
// hosts, an already-parsed object). Returns [] when unreadable.
function parseWarpMarkers(raw) {
    var v = raw;
    try {
        if (v && typeof v === "object" && v.length !== undefined) v = v.length === 1 ? v[0] : Array.prototype.join.call(v, " ");
        if (typeof v === "string") v = JSON.parse(v);
    } catch (e) { return []; }
    var list = v && v.warp_markers ? v.warp_markers : (v && v.length !== undefined ? v : []);
    var out = [];
    for (var i = 0; i < list.length; i++)
        out.push({ beat_time: Number(list[i].beat_time), sample_time: Number(list[i].sample_time) });
    return out;
}

function readClip(api, path) {
    var c = api(path);
    if (!exists(c)) return null;
    var audio = num(c.get("is_audio_clip"));
    var clip = {
        path: path,
        is_audio_clip: audio,
        start_time: num(c.get("start_time")),
        end_time: num(c.get("end_time")),
        name: str(c.get("name"))
    };
    if (!audio) return clip;
    clip.file_path = str(c.get("file_path"));
    clip.warping = num(c.get("warping"));
    clip.looping = num(c.get("looping"));
    clip.loop_start = num(c.get("loop_start"));
    clip.loop_end = num(c.get("loop_end"));
    clip.start_marker = num(c.get("start_marker"));
    clip.sample_rate = num(c.get("sample_rate"));
    clip.sample_length = num(c.get("sample_length"));
    clip.pitch_coarse = num(c.get("pitch_coarse"));
    clip.pitch_fine = num(c.get("pitch_fine"));
    clip.gain = num(c.get("gain"));
    clip.warp_markers = clip.warping ? parseWarpMarkers(c.get("warp_markers")) : [];
    return clip;
}

function arrangementClipPaths(api, trackPath) {
    var n = api(trackPath).getcount("arrangement_clips");
    var out = [];
    for (var i = 0; i < n; i++) out.push(trackPath + " arrangement_clips " + i);
    return out;
}

function selectedClipPath(api) {
    var d = api("live_set view detail_clip");
    return exists(d) ? pathOf(d) : null;
}

// Continue works on the selected arrangement clip of this track, else the last one.
function pickContinueClip(api, trackPath) {
    var paths = arrangementClipPaths(api, trackPath);
    if (!paths.length) return null;
    var sel = selectedClipPath(api);
    if (sel && paths.indexOf(sel) >= 0) return readClip(api, sel);
    var best = null;
    for (var i = 0; i < paths.length; i++) {
        var c = readClip(api, paths[i]);
        if (c && c.is_audio_clip && (!best || c.end_time > best.end_time)) best = c;
    }
    return best;
}

// Inpaint works on the clip under the loop brace: the selected one if it
// overlaps the brace, else the one overlapping it most.
function pickInpaintClip(api, trackPath, song) {
    var paths = arrangementClipPaths(api, trackPath);
    var l0 = song.loop_start, l1 = song.loop_start + song.loop_length;
    var sel = selectedClipPath(api);
    var best = null, bestOverlap = 0;
    for (var i = 0; i < paths.length; i++) {
        var c = readClip(api, paths[i]);
        if (!c || !c.is_audio_clip) continue;
        var ov = Math.min(l1, c.end_time) - Math.max(l0, c.start_time);
        if (ov <= 0) continue;
        if (paths[i] === sel) return c;
        if (ov > bestOverlap) { best = c; bestOverlap = ov; }
    }
    return best;
}

// Locator (cue point) times in song beats, sorted. Pairs of locators inside the loop
// brace mark the regions of a multi-region inpaint (Live has no multi-range selection).
function readCuePoints(api) {
    var n = api("live_set").getcount("cue_points");
    var out = [];
    for (var i = 0; i < n; i++) out.push(num(api("live_set cue_points " + i).get("time")));
    out.sort(function (a, b) { return a - b; });
    return out;
}

// ---------------------------------------------------------------- writing back

// The created clip must play the file at natural speed: Live may create it
// warped, and warping would stretch it to Live's guess of the file's tempo. It
// takes the source clip's gain, so it plays at the level of what it replaces.
function finishClip(api, clipPath, name, gain) {
    var c = api(clipPath);
    if (num(c.get("warping"))) c.set("warping", 0);
    if (typeof gain === "number" && isFinite(gain)) c.set("gain", gain);
    c.set("name", name);
    return clipPath;
}

// Paths handed to Live: on a Mac in the /Volumes/<drive>/ form the LOM asks for (see
// core.livePath); set by the device from max.os and the start-up disk's name.
var pathStyle = { os: "", bootVolume: "" };
function setPathStyle(os, bootVolume) { pathStyle.os = os || ""; pathStyle.bootVolume = bootVolume || ""; }
function forLive(path) { return core.livePath(path, pathStyle.os, pathStyle.bootVolume); }
function samePath(a, b) { return core.posixPath(a, pathStyle.bootVolume) === core.posixPath(b, pathStyle.bootVolume); }

function findClipAt(api, ownerPath, position, filePath) {
    var o = api(ownerPath);
    var n = o.getcount("arrangement_clips");
    for (var i = n - 1; i >= 0; i--) {
        var p = ownerPath + " arrangement_clips " + i;
        var c = api(p);
        if (Math.abs(num(c.get("start_time")) - position) < 1e-6 && samePath(str(c.get("file_path")), filePath)) return p;
    }
    return null;
}

function placeArrangement(api, trackPath, paths, position, names, gain) {
    var track = api(trackPath);
    var made = [];
    for (var k = 0; k < paths.length; k++) {
        var owner = trackPath;
        if (k === 0) {
            track.call("create_audio_clip", forLive(paths[k]), position);
        } else {
            // Variations 2.. go on fresh take lanes under the track, where
            // Live's comping lets the user audition and pick.
            var before = track.getcount("take_lanes");
            track.call("create_take_lane");
            var lanes = track.getcount("take_lanes");
            if (lanes <= before) return { ok: false, made: made };
            owner = trackPath + " take_lanes " + (lanes - 1);
            api(owner).call("create_audio_clip", forLive(paths[k]), position);
        }
        var clipPath = findClipAt(api, owner, position, paths[k]);
        if (!clipPath) return { ok: false, made: made };
        made.push(finishClip(api, clipPath, names[k], gain));
    }
    return { ok: true, made: made };
}

function placeSession(api, trackPath, paths, names, gain) {
    var track = api(trackPath);
    var made = [];
    var slot = 0;
    for (var k = 0; k < paths.length; k++) {
        // Next empty slot; add a scene at the end when the track runs out.
        for (;;) {
            if (slot >= track.getcount("clip_slots")) {
                var n = track.getcount("clip_slots");
                api("live_set").call("create_scene", -1);
                if (track.getcount("clip_slots") <= n) return { ok: false, made: made };
            }
            if (!num(api(trackPath + " clip_slots " + slot).get("has_clip"))) break;
            slot++;
        }
        var slotPath = trackPath + " clip_slots " + slot;
        api(slotPath).call("create_audio_clip", forLive(paths[k]));
        if (!num(api(slotPath).get("has_clip"))) return { ok: false, made: made };
        made.push(finishClip(api, slotPath + " clip", names[k], gain));
        slot++;
    }
    return { ok: true, made: made };
}

// Write the result files back, trying the methods the Live version offers in
// order and checking that each call really produced clips before trusting it.
// Returns {method: "arrangement"|"session"|"manual", clips: [paths], files}.
function placeResults(api, trackPath, plan, files, version) {
    var methods = core.placementMethods(version);
    var names = [];
    for (var k = 0; k < files.length; k++) names.push(core.clipName(plan.kind, k, files.length));
    for (var i = 0; i < methods.length; i++) {
        var r;
        if (methods[i] === "arrangement") r = placeArrangement(api, trackPath, files, plan.positionBeats, names, plan.gain);
        else if (methods[i] === "session") r = placeSession(api, trackPath, files, names, plan.gain);
        else return { method: "manual", clips: [], files: files };
        // A partial success stays (Undo removes it); the rest is shown as files.
        if (r.ok) return { method: methods[i], clips: r.made, files: files };
        if (r.made.length) return { method: methods[i], clips: r.made, files: files, partial: true };
    }
    return { method: "manual", clips: [], files: files };
}

exports.readVersion = readVersion;
exports.setPathStyle = setPathStyle;
exports.readCuePoints = readCuePoints;
exports.readSong = readSong;
exports.deviceTrackPath = deviceTrackPath;
exports.parseWarpMarkers = parseWarpMarkers;
exports.readClip = readClip;
exports.pickContinueClip = pickContinueClip;
exports.pickInpaintClip = pickInpaintClip;
exports.placeResults = placeResults;
