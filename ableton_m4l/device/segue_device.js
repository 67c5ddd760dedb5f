// Segue for Live: the Max [js] glue. Reads Live through LiveAPI, sends
// protocol v1 requests out of outlet 0 into [udpsend 127.0.0.1 9137], takes
// replies from [udpreceive] (port chosen here, sent to the engine as
// reply_port), drives the UI, and writes results back via segue_live.js.
// ES5 for Max's classic [js]; the logic lives in segue_core.js / segue_live.js,
// which the Node tests exercise. Only this file touches Max globals.

autowatch = 0;
inlets = 1;
outlets = 4; // 0: to udpsend, 1: to udpreceive (port), 2: UI (route status engine progress result), 3: folder to reveal

var core = require("segue_core");
var live = require("segue_live");

var ACCEPT_WAIT_MS = 3000;  // no `accepted` this long after sending: the request may be lost
var state = {
    sr: 0, bars: 4, variations: 1, seed: 0, prompt: "", backend: "",
    host: "127.0.0.1", port: core.PROTOCOL_PORT,   // where the engine listens (the Host/Port fields)
    hit: "replace",                                 // short selection over a drum hit: replace or remove it
    backends: { inpaint: "", "continue": "", generate: "" }, // per action; "" = backend, else the engine's first
    locatorRegions: 0,                              // 1: pairs of locators inside the brace = inpaint regions
    replyPort: 0, ready: false,
    job: null,            // {plan, trackPath, sentAt, accepted}
    lastReply: 0, lastStatusSent: 0, engineUp: false
};

function api(path) { return new LiveAPI(path); }
function now() { return new Date().getTime(); }
function ui(what, text) { outlet(2, what, text); }
function status(text) { ui("status", text); post("segue: " + text + "\n"); }

function send(request) { outlet(0, core.toMaxMessage(request)); }

// ------------------------------------------------------------------ setup

// [live.thisdevice] bangs once Live is ready for LiveAPI calls.
function bang() { init(); }

function init() {
    if (state.ready) return;
    state.ready = true;
    // A random high port for replies, so two Segue devices in one set don't clash.
    state.replyPort = 49152 + Math.floor(Math.random() * 16000);
    outlet(1, "port", state.replyPort);
    outlet(0, "host", state.host);
    outlet(0, "port", state.port);
    // Paths handed to Live on a Mac take the /Volumes/<start-up disk>/ form (LOM reference).
    var os = typeof max !== "undefined" && max.os ? String(max.os) : "";
    var disk = "";
    try { disk = core.volumeOfMaxPath(this.patcher.filepath); } catch (e) { disk = ""; }
    live.setPathStyle(os, state.bootVolume || disk);
    status("Inpaint uses the loop brace (Live's API has no time selection).");
    poller.interval = 2000;
    poller.repeat();
}

var poller = new Task(poll, this);

// Status every 2 s doubles as the liveness check: no answer within 3 s means
// the engine is not running, and the UI says how to start it.
function poll() {
    var t = now();
    if (state.lastStatusSent && state.lastReply < state.lastStatusSent && t - state.lastStatusSent > 3000) {
        if (state.engineUp || state.lastReply === 0) ui("engine", help());
        state.engineUp = false;
        if (state.job) failJob("The engine stopped answering. " + help());
    }
    if (!state.lastStatusSent || state.lastReply >= state.lastStatusSent || t - state.lastStatusSent > 3000) {
        state.lastStatusSent = t;
        send(core.simpleRequest("/segue/status", core.newRequestId(), state.replyPort));
    }
}

// ------------------------------------------------------------------ UI inputs

function sr(v) { state.sr = Math.round(v); }
function bars(v) { state.bars = Math.max(1, Math.min(32, Math.round(v))); }
function variations(v) { state.variations = Math.max(1, Math.min(4, Math.round(v))); }
function seed(v) { state.seed = Math.max(0, Math.round(v)); }
// The text fields (prompt, host, backends) are Live parameters of the blob type, saved with the set;
// the device bangs them once it is loaded, so their restored text arrives here like typed text. An
// empty field may answer that bang with a bare "bang": that means no text.
function fieldText(args) {
    var words = arrayfromargs(args);
    return (words.length === 1 && words[0] === "bang") ? "" : words.join(" ");
}
function prompt() { state.prompt = fieldText(arguments); }
function backend(name) { state.backend = name ? String(name) : ""; }
function backend_inpaint() { state.backends.inpaint = fieldText(arguments); }
function backend_continue() { state.backends["continue"] = fieldText(arguments); }
function backend_generate() { state.backends.generate = fieldText(arguments); }
// live.menu sends the item index (0 replace, 1 remove); a symbol works too.
function hit(v) { state.hit = (v === 1 || v === "remove") ? "remove" : "replace"; }
function locator_regions(v) { state.locatorRegions = v ? 1 : 0; }
function boot_volume(name) { state.bootVolume = name ? arrayfromargs(arguments).join(" ") : ""; init_paths(); }
function init_paths() {
    var os = typeof max !== "undefined" && max.os ? String(max.os) : "";
    live.setPathStyle(os, state.bootVolume || "");
}

// Host and port of the engine (the device's fields): [udpsend] is told at once.
function engine_host() {
    var h = fieldText(arguments) || "127.0.0.1";
    state.host = h;
    outlet(0, "host", h);
    state.lastReply = 0; state.lastStatusSent = 0; state.engineUp = false;
    ui("engine", "Engine: checking " + h + ":" + state.port + "...");
}
function engine_port(n) {
    var p = Math.round(Number(n));
    if (!(p >= 1 && p <= 65535)) { status("Port must be 1-65535."); return; }
    state.port = p;
    outlet(0, "port", p);
    state.lastReply = 0; state.lastStatusSent = 0; state.engineUp = false;
    ui("engine", "Engine: checking " + state.host + ":" + p + "...");
}
function help() { return core.engineHelp(state.host, state.port); }

function continue_clip() { start("continue"); }
function inpaint() { start("inpaint"); }
function generate() { start("generate"); }

function cancel() {
    if (!state.job) { status("Nothing to cancel."); return; }
    state.job.cancelRequested = true;
    send(core.simpleRequest("/segue/cancel", state.job.plan.id, state.replyPort));
    status("Cancelling...");
}

// ------------------------------------------------------------------ requests

function start(kind) {
    if (!state.ready) { status("Not ready yet."); return; }
    if (state.job) { status("Busy with " + state.job.plan.kind + ": wait or Cancel."); return; }
    if (!state.engineUp) { ui("engine", help()); status(help()); return; }
    var trackPath = live.deviceTrackPath(api);
    if (!trackPath) { status("Put Segue on an audio track (not a return or the main track)."); return; }
    var song = live.readSong(api, state.sr);
    var opts = { seed: state.seed, variations: state.variations, prompt: state.prompt,
                 backend: state.backends[kind] || state.backend, replyPort: state.replyPort };
    if (kind === "inpaint") {
        opts.hit = state.hit;
        if (state.locatorRegions) {
            // Locators inside the brace, taken in pairs: each pair is one region.
            var cues = live.readCuePoints(api), inside = [];
            for (var i = 0; i < cues.length; i++)
                if (cues[i] >= song.loop_start - 1e-9 && cues[i] <= song.loop_start + song.loop_length + 1e-9) inside.push(cues[i]);
            var pairs = [];
            for (var j = 0; j + 1 < inside.length; j += 2) pairs.push([inside[j], inside[j + 1]]);
            if (pairs.length > 1) opts.regionBeats = pairs;
        }
    }
    var plan, clip = null;
    if (kind === "continue") {
        clip = live.pickContinueClip(api, trackPath);
        plan = core.planContinue(song, clip, state.bars, opts);
    } else if (kind === "inpaint") {
        clip = live.pickInpaintClip(api, trackPath, song);
        plan = core.planInpaint(song, clip, opts);
    } else plan = core.planGenerate(song, state.bars, opts);
    if (!plan.ok) { status(plan.message); return; }
    state.job = { plan: plan, trackPath: trackPath, sentAt: now(), accepted: false };
    ui("progress", 0);
    send(plan.request);
    // Which clip: the selection may be elsewhere (a Session clip, another track), and then the
    // track's own clip is used; say which, so a surprise is seen before the result lands.
    status(kind + ": sent" + (clip ? " (clip " + (clip.name ? "'" + clip.name + "' " : "") + "at beat " +
                              (Math.round(clip.start_time * 1000) / 1000) + ")" : ""));
}

function failJob(text) {
    state.job = null;
    ui("progress", 0);
    status(text);
}

// ------------------------------------------------------------------ replies

// [udpreceive] outputs each OSC message with its address as the selector.
function anything() {
    var address = messagename;
    if (address.charAt(0) !== "/") { post("segue: unknown message " + address + "\n"); return; }
    var r = core.parseReply(address, arrayfromargs(arguments));
    state.lastReply = now();
    if (r.type === "status" || r.type === "pong") {
        state.engineUp = true;
        var jb = state.job;
        // Nothing queued and our request not running, yet no final reply: it (or its answer) was
        // lost on the way (UDP). Ask the engine to send it again. Also when no `accepted` came within
        // ACCEPT_WAIT_MS: a request lost before the engine saw it left the device Busy for good.
        var waited = jb && (jb.accepted || now() - jb.sentAt > ACCEPT_WAIT_MS);
        if (r.type === "status" && waited && r.queued === 0 && r.running !== jb.plan.id) {
            jb.askedResult = true;
            send(core.simpleRequest("/segue/result", jb.plan.id, state.replyPort));
        }
        ui("engine", "Engine: " + r.backend + (r.type === "status" ? " | " + r.state + " | queue " + r.queued : ""));
        return;
    }
    var job = state.job;
    if (!job || r.id !== job.plan.id) return; // a reply for an earlier request
    if (r.type === "accepted") { job.accepted = true; status(job.plan.kind + ": queued at " + r.position); }
    else if (r.type === "progress") { ui("progress", Math.round(r.fraction * 100)); status(job.plan.kind + ": " + r.stage); }
    else if (r.type === "error" && (r.code === "not_found" || r.code === "unknown_address") && job.askedResult &&
             !job.cancelRequested) {
        // The answer to /segue/result: not finished as far as the engine knows (or an engine without
        // /segue/result). Twice, one poll apart, while it is idle: lost.
        job.askedResult = false;
        job.notFound = (job.notFound || 0) + 1;
        if (job.notFound >= 2) failJob(core.errorText("lost", "the engine has no record of this request any more"));
    }
    else if (r.type === "error") failJob(core.errorText(r.code, r.message, job.cancelRequested));
    else if (r.type === "done") finish(job, r);
}

function finish(job, r) {
    state.job = null;
    ui("progress", 100);
    var placed = live.placeResults(api, job.trackPath, job.plan, r.paths, live.readVersion(api));
    if (placed.method === "manual") {
        // No LOM call can place audio in this Live version: reveal the files.
        var p0 = r.paths[0];   // a Windows engine writes backslashes
        var folder = p0.substring(0, Math.max(p0.lastIndexOf("/"), p0.lastIndexOf("\\")));
        ui("result", "Drag into Live: " + r.paths.join("  "));
        outlet(3, "file://" + folder);
        status(job.plan.kind + ": done (this Live version cannot place audio from a device)");
        return;
    }
    var where = placed.method === "arrangement" ? "Arrangement" + (r.paths.length > 1 ? " (variations on take lanes)" : "")
                                                : "Session View clip slots";
    ui("result", r.paths[0]);
    // The position was worked out at the tempo of the request: a tempo change meanwhile moves the
    // source clip's audio (unwarped clips keep their seconds) but not the planned position.
    var tempoNow = live.readSong(api, state.sr).tempo, moved = "";
    if (job.plan.tempo && Math.abs(tempoNow - job.plan.tempo) > 1e-6)
        moved = " The song tempo changed from " + job.plan.tempo + " to " + tempoNow + " BPM meanwhile: check where it sits.";
    status(job.plan.kind + ": " + placed.clips.length + " clip(s) in the " + where + (placed.partial ? " (some failed)" : "") +
           ". Undo removes them." + moved);
}
