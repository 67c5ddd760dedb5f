-- @noindex
-- Segue for REAPER: shared code of the Segue actions (loaded with dofile by each script).
--
-- Transport: REAPER's Lua has no sockets, so every request runs the `segue`
-- command-line client (installed with Segue) through reaper.ExecProcess(cmd, -2),
-- which returns at once. The client speaks OSC to the engine and mirrors every
-- event into a key=value "status file" (rewritten atomically); a reaper.defer
-- loop polls that file, so REAPER's UI never blocks and no native library
-- (mavriq-lua-sockets etc.) is needed. See docs/reaper.md.
--
-- Timeline conventions (the same as protocol v1): bpm counts quarter notes per
-- minute, a bar of N/D lasts N*4/D quarter notes, source times are seconds in
-- the take's file: D_STARTOFFS + (project time - item position), playrate 1.

local M = {}

M.VERSION = "0.2.0"
M.SECTION = "Segue"          -- ExtState section for settings and running ids
M.TITLE = "Segue"

local EPS = 1e-6             -- seconds: tolerance for "the same time" on the timeline
-- take properties a result copies from the take it replaces or continues (level, pan, pitch, channel mode)
local TAKE_PROPS = { "D_VOL", "D_PAN", "D_PITCH", "I_CHANMODE" }
M.MIN_CONTEXT = 0.5          -- seconds of source audio the engine needs at the least
M.START_WAIT = 120           -- seconds to wait for an auto-started engine (weights load)

M.DEFAULTS = {
  exe = "segue",             -- path of the segue client (plain "segue": found on PATH)
  host = "127.0.0.1",
  port = "9137",
  backend = "",              -- legacy (one backend for every action): used where a per-action one is blank
  backend_inpaint = "",      -- per action (Inpaint, Variations, Remove hit); blank: the engine's first backend
  backend_continue = "",
  backend_generate = "",
  token = "",
  prompt = "",
  landing = "take",          -- "take": split the item, add takes; "item": new item over the selection
  autostart = "0",           -- "1": run `segue serve` when no engine answers
  out = "",                  -- output folder; blank: the engine's default renders folder
  bars = "4",                -- default bars for Continue
  variations = "4",          -- default count for Variations
  seed = "",                 -- blank: a random seed per request (shown in the take name)
  timeout = "600",           -- seconds a request may take
  client_wait = "20",        -- seconds for the client to write its first status line
}

---------------------------------------------------------------- settings

function M.setting(key)
  local v = reaper.GetExtState(M.SECTION, key)
  if v == nil or v == "" then return M.DEFAULTS[key] end
  return v
end

function M.set_setting(key, value)
  reaper.SetExtState(M.SECTION, key, tostring(value), true)
end

---------------------------------------------------------------- small helpers

-- Numbers on command lines: 9 decimals (a nanosecond; far below a sample), and
-- always a dot whatever the C locale says.
function M.fmt(x)
  return (string.format("%.9f", x):gsub(",", "."))
end

function M.msg(text)
  reaper.ShowMessageBox(text, M.TITLE, 0)
end

function M.log(text)
  reaper.ShowConsoleMsg("Segue: " .. text .. "\n")
end

function M.is_windows()
  return (reaper.GetOS() or ""):match("^Win") ~= nil
end

-- ExecProcess splits its command line on spaces outside double quotes, so every
-- argument is double-quoted; a double quote inside an argument cannot be
-- expressed and is refused. On Windows a backslash before the closing quote
-- would escape it (`"D:\renders\"` swallows the rest of the line), so trailing
-- backslashes are doubled there, as the C runtime's argument rules ask.
function M.quote(arg)
  arg = tostring(arg)
  if arg:find('"', 1, true) or arg:find("[\r\n]") then
    error("Segue: cannot pass this text on a command line (it contains a double quote or a line break): " .. arg, 0)
  end
  if M.is_windows() then arg = arg:gsub("(\\+)$", "%1%1") end
  return '"' .. arg .. '"'
end

function M.is_abs(path)
  return path:match("^/") ~= nil or path:match("^%a:[/\\]") ~= nil or path:match("^\\\\") ~= nil
end

local seeded = false
function M.new_id(kind)
  if not seeded then
    math.randomseed(os.time(), math.floor((reaper.time_precise() % 1) * 1e6))
    seeded = true
  end
  return string.format("reaper-%s-%d-%06x", kind, os.time(), math.random(0, 0xFFFFFF))
end

function M.join(dir, name)
  local sep = M.is_windows() and "\\" or "/"
  if dir:sub(-1) == "/" or dir:sub(-1) == "\\" then return dir .. name end
  return dir .. sep .. name
end

function M.status_dir()
  local dir = M.join(M.join(reaper.GetResourcePath(), "Data"), "Segue")
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir
end

---------------------------------------------------------------- project facts

-- The rate REAPER plays at: the project's own rate when it is forced
-- (Project settings > "Project sample rate"), else the audio device's.
function M.project_sr(fallback)
  if reaper.GetSetProjectInfo(0, "PROJECT_SRATE_USE", 0, false) > 0 then
    local sr = reaper.GetSetProjectInfo(0, "PROJECT_SRATE", 0, false)
    if sr and sr > 0 then return math.floor(sr + 0.5) end
  end
  local ok, desc = reaper.GetAudioDeviceInfo("SRATE")
  local sr = ok and tonumber(desc) or nil
  if sr and sr > 0 then return math.floor(sr + 0.5) end
  return math.floor((fallback or 44100) + 0.5)
end

-- Tempo, signature and the bar line at or before project time t.
function M.grid_at(t)
  local num, den, bpm = reaper.TimeMap_GetTimeSigAtTime(0, t)
  local bar_seconds = num * 4 / den * 60 / bpm
  local _, measures = reaper.TimeMap2_timeToBeats(0, t + EPS / 10)
  local bar_time = reaper.TimeMap2_beatsToTime(0, 0, measures)
  if bar_time > t + EPS then  -- rounding put us one measure late
    measures = measures - 1
    bar_time = reaper.TimeMap2_beatsToTime(0, 0, measures)
  end
  return { bpm = bpm, num = num, den = den, sig = string.format("%d/%d", num, den),
           bar_seconds = bar_seconds, bar_time = bar_time, measure = measures }
end

function M.time_selection()
  local s, e = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
  if not s or not e or e - s <= EPS then return nil end
  return s, e
end

function M.track_label(track)
  local _, name = reaper.GetSetMediaTrackInfo_String(track, "P_NAME", "", false)
  local n = math.floor(reaper.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER") + 0.5)
  if name and name ~= "" then return string.format("track %d \"%s\"", n, name) end
  return string.format("track %d", n)
end

function M.item_label(item)
  return string.format("%s, item at %.3f s", M.track_label(reaper.GetMediaItem_Track(item)),
                       reaper.GetMediaItemInfo_Value(item, "D_POSITION"))
end

-- Everything a request needs about an item's active take, or nil and a message.
function M.take_info(item)
  local label = M.item_label(item)
  local take = reaper.GetActiveTake(item)
  if not take then return nil, label .. ": the item has no take (empty item)." end
  if reaper.TakeIsMIDI(take) then
    return nil, label .. ": the active take is MIDI. Segue works on audio takes; render the MIDI to audio first."
  end
  local rate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
  if math.abs(rate - 1) > 1e-9 then
    return nil, string.format("%s: the take plays at rate %.4g. Segue needs playrate 1.0 (source time = timeline time); "
      .. "reset the rate, or glue the item (Item: Glue items) and try again.", label, rate)
  end
  if reaper.GetTakeNumStretchMarkers(take) > 0 then
    return nil, label .. ": the take has stretch markers, so its source no longer plays at timeline time. "
      .. "Glue the item (Item: Glue items) first."
  end
  local src = reaper.GetMediaItemTake_Source(take)
  local kind = reaper.GetMediaSourceType(src)
  if kind == "SECTION" then
    return nil, label .. ": the take plays a section or reversed source. Glue the item (Item: Glue items) first."
  end
  local path = reaper.GetMediaSourceFileName(src)
  if not path or path == "" then return nil, label .. ": the take has no source file." end
  if not M.is_abs(path) then
    return nil, label .. ": the take's file path is relative (" .. path .. "); save the project or glue the item."
  end
  if path:find('"', 1, true) then
    return nil, label .. ": the file's name or folder holds a double quote (" .. path .. "), which cannot be "
      .. "passed to the Segue client. Rename it, or glue the item."
  end
  local src_len = reaper.GetMediaSourceLength(src)
  -- what the new takes copy, so a result plays as the take it replaces (level, pan, pitch, channels)
  local props = {}
  for _, k in ipairs(TAKE_PROPS) do props[k] = reaper.GetMediaItemTakeInfo_Value(take, k) end
  return {
    item = item, take = take, track = reaper.GetMediaItem_Track(item), label = label,
    pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION"),
    len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH"),
    offs = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
    path = path, src_len = src_len, src_sr = reaper.GetMediaSourceSampleRate(src), props = props,
  }
end

-- How far (seconds) the item moved on the timeline while the engine worked (an edit, a ripple, a
-- tempo change with beats timebase): a result belongs with the source time it was made for, so it
-- moves as far. A move is said in the console. nil and a message when the item, its active take or
-- its file changed, or it was deleted.
function M.moved_since(info)
  local gone = info.label .. ": the item %s while Segue worked, so the result was not placed. It is in:\n"
  if not reaper.ValidatePtr2(0, info.item, "MediaItem*") then return nil, string.format(gone, "was deleted") end
  local take = reaper.GetActiveTake(info.item)
  if take ~= info.take or reaper.GetMediaSourceFileName(reaper.GetMediaItemTake_Source(take)) ~= info.path
     or math.abs(reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE") - 1) > 1e-9 then
    return nil, string.format(gone, "changed take, file or rate")
  end
  -- where source time 0 of the file lies now, against where it lay when the request was made
  local delta = reaper.GetMediaItemInfo_Value(info.item, "D_POSITION") - reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
    - (info.pos - info.offs)
  if math.abs(delta) > EPS then
    M.log(string.format("%s moved by %+.3f s while Segue worked; the result follows it.", info.label, delta))
  end
  return delta
end

-- The tempo map changes (a tempo or time signature marker) inside the project span [t0, t1).
function M.tempo_changes_in(t0, t1)
  return reaper.FindTempoTimeSigMarker(0, t0 + EPS) ~= reaper.FindTempoTimeSigMarker(0, t1 - EPS)
end

function M.to_source(info, t)
  return info.offs + (t - info.pos)
end

-- Source time of the bar line at/before project time t (moved on by whole bars
-- when it falls before the file's start: any bar line will do for the engine).
function M.downbeat_in_source(info, grid)
  local d = M.to_source(info, grid.bar_time)
  local m = grid.measure
  while d < -EPS do    -- the next bar line of the project's own grid (a tempo marker may fall mid-bar)
    m = m + 1
    d = M.to_source(info, reaper.TimeMap2_beatsToTime(0, 0, m))
  end
  return math.max(d, 0)
end

-- Items to inpaint: the selected items under the time selection, else the items
-- under it on the selected tracks. Returns a list of item handles.
function M.items_under(s, e)
  local found = {}
  local function overlaps(item)
    local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
    local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
    return pos < e - EPS and pos + len > s + EPS
  end
  local n = reaper.CountSelectedMediaItems(0)
  if n > 0 then
    for i = 0, n - 1 do
      local item = reaper.GetSelectedMediaItem(0, i)
      if overlaps(item) then found[#found + 1] = item end
    end
    return M.one_per_track(found, s, e), true
  end
  for t = 0, reaper.CountSelectedTracks(0) - 1 do
    local track = reaper.GetSelectedTrack(0, t)
    for i = 0, reaper.CountTrackMediaItems(track) - 1 do
      local item = reaper.GetTrackMediaItem(track, i)
      if overlaps(item) then found[#found + 1] = item end
    end
  end
  return M.one_per_track(found, s, e), false
end

-- Overlapping items on one track under [s, e) (an earlier result landed as a new item over the
-- original): one request per track, for the item covering most of the selection, then the longest
-- (the most context around it; a result item holds none). The console says which one.
function M.one_per_track(items, s, e)
  local best, order = {}, {}
  local function score(item)
    local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
    local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
    return math.min(e, pos + len) - math.max(s, pos), len
  end
  for _, item in ipairs(items) do
    local track = reaper.GetMediaItem_Track(item)
    local cur = best[track]
    if not cur then
      best[track], order[#order + 1] = { item = item, n = 1 }, track
    else
      cur.n = cur.n + 1
      local c1, l1 = score(item)
      local c0, l0 = score(cur.item)
      if c1 > c0 + EPS or (math.abs(c1 - c0) <= EPS and l1 > l0 + EPS) then cur.item = item end
    end
  end
  local out = {}
  for _, track in ipairs(order) do
    local b = best[track]
    if b.n > 1 then
      M.log(string.format("%s: %d overlapping items lie under the selection; Segue uses %s.",
        M.track_label(track), b.n, M.item_label(b.item)))
    end
    out[#out + 1] = b.item
  end
  return out
end

---------------------------------------------------------------- client processes

function M.client_prefix(sub)
  local parts = { M.quote(M.setting("exe")), sub }
  return parts
end

local function add_conn(parts)
  parts[#parts + 1] = "--host"; parts[#parts + 1] = M.quote(M.setting("host"))
  parts[#parts + 1] = "--port"; parts[#parts + 1] = M.quote(M.setting("port"))
  local token = M.setting("token")
  if token ~= "" then parts[#parts + 1] = "--token"; parts[#parts + 1] = M.quote(token) end
end

-- Command line of a client request. positional: strings; opts: list of {key, value}.
function M.request_cmd(sub, positional, opts, id, status_path)
  local parts = M.client_prefix(sub)
  for _, p in ipairs(positional) do parts[#parts + 1] = M.quote(p) end
  for _, kv in ipairs(opts) do
    parts[#parts + 1] = "--" .. kv[1]; parts[#parts + 1] = M.quote(kv[2])
  end
  add_conn(parts)
  parts[#parts + 1] = "--timeout"; parts[#parts + 1] = M.quote(M.setting("timeout"))
  parts[#parts + 1] = "--id"; parts[#parts + 1] = M.quote(id)
  parts[#parts + 1] = "--status-file"; parts[#parts + 1] = M.quote(status_path)
  parts[#parts + 1] = "--quiet"
  return table.concat(parts, " ")
end

function M.cancel_cmd(id)
  local parts = M.client_prefix("cancel")
  parts[#parts + 1] = M.quote(id)
  add_conn(parts)
  return table.concat(parts, " ")
end

-- The backend an action asks for ("inpaint", "continue", "generate"); "" = the engine's first.
function M.backend_for(kind)
  local b = M.setting("backend_" .. kind)
  if b == nil or b == "" then b = M.setting("backend") end
  return b or ""
end

-- The distinct backends the actions ask for, dsp left out (always loaded), for `segue serve --backend a,b`.
function M.backends_used()
  local out, seen = {}, { dsp = true, [""] = true }
  for _, kind in ipairs({ "inpaint", "continue", "generate" }) do
    local b = M.backend_for(kind)
    if not seen[b] then seen[b] = true; out[#out + 1] = b end
  end
  return out
end

function M.serve_cmd()
  local parts = M.client_prefix("serve")
  parts[#parts + 1] = "--host"; parts[#parts + 1] = M.quote(M.setting("host"))
  parts[#parts + 1] = "--port"; parts[#parts + 1] = M.quote(M.setting("port"))
  local backends = M.backends_used()
  if #backends > 0 then parts[#parts + 1] = "--backend"; parts[#parts + 1] = M.quote(table.concat(backends, ",")) end
  if M.setting("token") ~= "" then parts[#parts + 1] = "--token"; parts[#parts + 1] = M.quote(M.setting("token")) end
  if M.setting("out") ~= "" then parts[#parts + 1] = "--allow-dir"; parts[#parts + 1] = M.quote(M.setting("out")) end
  return table.concat(parts, " ")
end

-- Start a command without waiting (-2: no wait, minimized console on Windows).
function M.spawn(cmd)
  return reaper.ExecProcess(cmd, -2) ~= nil
end

-- The client's status file as a table (path= lines collected in .paths), or nil
-- while it does not exist yet.
function M.read_status(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local st = { paths = {} }
  for line in text:gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k == "path" then st.paths[#st.paths + 1] = v elseif k then st[k] = v end
  end
  if not st.state then return nil end
  return st
end

---------------------------------------------------------------- running ids (for the Cancel action)

local function running_ids()
  local ids = {}
  for id in (reaper.GetExtState(M.SECTION, "running") or ""):gmatch("%S+") do ids[#ids + 1] = id end
  return ids
end
M.running_ids = running_ids

local function set_running(id, on)
  local keep = {}
  for _, x in ipairs(running_ids()) do if x ~= id then keep[#keep + 1] = x end end
  if on then keep[#keep + 1] = id end
  reaper.SetExtState(M.SECTION, "running", table.concat(keep, " "), false)
end

---------------------------------------------------------------- progress window

local UI = { open = false }

function M.ui_open(title)
  gfx.init(title, 440, 92)
  gfx.setfont(1, "Arial", 15)
  UI.open = true
end

-- Draws one frame; returns true when the user asked to cancel (Esc, or closed the window).
function M.ui_frame(fraction, line1, line2)
  if not UI.open then return false end
  local c = gfx.getchar()
  if c < 0 or c == 27 then return true end
  gfx.set(0.16, 0.16, 0.18, 1); gfx.rect(0, 0, gfx.w, gfx.h, 1)
  gfx.set(0.92, 0.92, 0.92, 1); gfx.x, gfx.y = 12, 10; gfx.drawstr(line1)
  local w = math.max(gfx.w - 24, 10)
  gfx.set(0.35, 0.35, 0.38, 1); gfx.rect(12, 36, w, 14, 0)
  gfx.set(0.35, 0.7, 0.45, 1); gfx.rect(12, 36, math.floor(w * math.min(math.max(fraction, 0), 1)), 14, 1)
  gfx.set(0.75, 0.75, 0.75, 1); gfx.x, gfx.y = 12, 60; gfx.drawstr(line2 .. "    Esc / close: cancel")
  gfx.update()
  return false
end

function M.ui_close()
  if UI.open then gfx.quit(); UI.open = false end
end

---------------------------------------------------------------- error texts

function M.engine_hint()
  return string.format("The Segue engine is not running at %s:%s.\n\nStart it in a terminal with:\n\n    segue serve --port %s\n\n"
    .. "or tick \"Start the engine automatically\" in the action \"Segue - Settings\".",
    M.setting("host"), M.setting("port"), M.setting("port"))
end

function M.describe_error(code, message)
  message = message or ""
  if code == "no_engine" then return M.engine_hint() end
  if code == "unsupported" then
    return "The engine's backend cannot do this: " .. message
  end
  if code == "insufficient_context" then
    return "Too little audio around the selection for the engine: " .. message
      .. "\nUse a longer item (or a shorter selection) so there is audio to learn from."
  end
  if code == "backend_unavailable" then
    return "Backend not loaded: " .. message .. "\nClear the backend in Segue - Settings or restart the engine with it."
  end
  if code == "client_missing" then return message end
  if code == "engine_gone" then
    return "The Segue engine stopped answering before the result came (it exited or hangs):\n\n" .. message
  end
  if code == "cancelled" then
    -- Only reached when the user did not cancel: the engine did (e.g. "engine shutting down").
    return "The engine cancelled the request: " .. message
      .. "\n\nNothing was added. Start the engine again (segue serve) and run the action again."
  end
  if code == "lost" then
    return "The engine's answer was lost and it cannot send it again: " .. message .. "\nRun the action again."
  end
  return string.format("The engine answered with an error (%s): %s", tostring(code), message)
end

---------------------------------------------------------------- the request runner

-- Runs a batch of requests without blocking REAPER:
--   ping the engine (auto-start it when enabled) -> launch every request ->
--   poll their status files in a defer loop with a progress window ->
--   call batch.on_done(jobs) once all have ended (each job: spec, state, status).
-- spec = { sub = "inpaint", positional = {...}, opts = {{k, v}, ...}, label = "..." }
function M.run_batch(batch)
  local exe = M.setting("exe")
  if M.is_abs(exe) and not reaper.file_exists(exe) then
    return M.msg("The Segue program was not found at:\n\n" .. exe .. "\n\nSet the full path of the `segue` program "
      .. "in the action \"Segue - Settings\" (for a virtual environment: <venv>/bin/segue, or <venv>\\Scripts\\segue.exe "
      .. "on Windows).")
  end
  local dir = M.status_dir()
  local jobs = {}
  local phase = "ping"
  local ping = nil
  local started_engine_at, retry_at = nil, 0
  local cancelling = false
  local finished = false
  reaper.SetExtState(M.SECTION, "cancel", "", false)

  local function new_proc(sub, positional, opts)
    local id = M.new_id(sub)
    local status_path = M.join(dir, id .. ".status")
    os.remove(status_path)
    local cmd = M.request_cmd(sub, positional, opts, id, status_path)
    local proc = { id = id, status_path = status_path, cmd = cmd, launched = reaper.time_precise(), state = "launched" }
    if not M.spawn(cmd) then
      proc.state = "error"
      proc.status = { state = "error", code = "client_missing", message = "REAPER could not run: " .. cmd, paths = {} }
    end
    return proc
  end

  -- Until the requests are sent, a "wait" id stands in the running list so that the
  -- Cancel action can stop the batch (it sends nothing to the engine for it).
  local wait_id = M.new_id("wait")
  set_running(wait_id, true)

  local function new_ping()
    ping = new_proc("ping", {}, {})
  end

  local function drop_ping()
    if ping then
      os.remove(ping.status_path)
      ping = nil
    end
    set_running(wait_id, false)
  end

  local function finish()
    if finished then return end
    finished = true
    M.ui_close()
    -- The Cancel action may have run since the last frame: its flag counts too, or a request the
    -- user cancelled, whose reply came back before the next frame, is reported as the engine's doing.
    local asked = cancelling or reaper.GetExtState(M.SECTION, "cancel") == "1"
    for _, job in ipairs(jobs) do
      set_running(job.id, false)
      os.remove(job.status_path)
      job.user_cancelled = asked   -- a `cancelled` the user did not ask for is shown (engine shutdown)
    end
    drop_ping()
    reaper.SetExtState(M.SECTION, "cancel", "", false)
    batch.on_done(jobs)
  end

  local function fail(text)
    finished = true
    M.ui_close()
    drop_ping()
    M.msg(text)
    if batch.on_fail then batch.on_fail(text) end
  end

  local function client_missing_text()
    return "The Segue client did not start (no status after " .. M.setting("client_wait") .. " s).\n\n"
      .. "Program: " .. M.setting("exe") .. "\n\nInstall Segue (see its README) and set the full path of the "
      .. "`segue` program in the action \"Segue - Settings\" (REAPER started from the Finder or a desktop "
      .. "menu may not see your shell's PATH)."
  end

  -- Poll one process's status file; returns its status table or nil.
  local function poll(proc)
    local st = M.read_status(proc.status_path)
    if st then proc.status = st; proc.state = st.state end
    if not st and proc.state == "launched" and reaper.time_precise() - proc.launched > (tonumber(M.setting("client_wait")) or 20) then
      proc.state = "error"
      proc.status = { state = "error", code = "client_missing", message = client_missing_text() }
    end
    return proc.status
  end

  local function launch_all()
    phase = "run"
    for _, spec in ipairs(batch.specs) do
      local job = new_proc(spec.sub, spec.positional, spec.opts)
      job.spec = spec
      jobs[#jobs + 1] = job
      set_running(job.id, true)
    end
  end

  -- already_sent: the Cancel action has sent the cancel messages itself.
  local function cancel_all(already_sent)
    if cancelling then return end
    cancelling = true
    if phase ~= "run" then  -- nothing was sent yet
      finished = true
      M.ui_close()
      drop_ping()
      M.log("cancelled before the request was sent")
      return
    end
    if already_sent then return end
    for _, job in ipairs(jobs) do
      if job.state ~= "done" and job.state ~= "error" then M.spawn(M.cancel_cmd(job.id)) end
    end
  end

  -- Draw, and cancel when the user closed the window, pressed Esc or ran the Cancel action.
  local function frame(fraction, line)
    local closed = M.ui_frame(fraction, batch.title, line)
    if reaper.GetExtState(M.SECTION, "cancel") == "1" then cancel_all(true)
    elseif closed then cancel_all(false) end
  end

  local function tick()
    if finished then return end
    if phase == "starting" and not ping and reaper.time_precise() >= retry_at then new_ping() end
    if phase == "ping" or phase == "starting" then
      local st = ping and poll(ping)
      if st and st.state == "done" then
        drop_ping()
        launch_all()
      elseif st and st.state == "error" then
        if st.code == "no_engine" and M.setting("autostart") == "1" then
          if not started_engine_at then
            started_engine_at = reaper.time_precise()
            phase = "starting"
            if not M.spawn(M.serve_cmd()) then return fail("REAPER could not run: " .. M.serve_cmd()) end
            M.log("starting the engine: " .. M.serve_cmd())
          elseif reaper.time_precise() - started_engine_at > M.START_WAIT then
            return fail("The Segue engine did not answer within " .. M.START_WAIT .. " s after starting it with:\n\n"
              .. M.serve_cmd() .. "\n\nRun that command in a terminal to see why.")
          end
          os.remove(ping.status_path)
          ping, retry_at = nil, reaper.time_precise() + 1.0  -- ping again in a second
        else
          return fail(M.describe_error(st.code, st.message))
        end
      end
    else
      local all_ended, sum = true, 0
      for _, job in ipairs(jobs) do
        local st = poll(job)
        if job.state == "done" then sum = sum + 1
        elseif job.state == "error" then sum = sum + 1
        else
          all_ended = false
          sum = sum + (st and tonumber(st.fraction) or 0)
          local limit = tonumber(M.setting("timeout")) or 600
          if reaper.time_precise() - job.launched > limit + 30 then
            job.state = "error"
            job.status = { state = "error", code = "timeout", message = "no answer from the client in time" }
          end
        end
      end
      if all_ended then return finish() end
      local st = jobs[1].status
      frame(sum / #jobs, cancelling and "cancelling..." or (st and st.stage) or "sending")
      if finished then return end
      reaper.defer(tick)
      return
    end
    frame(0, phase == "starting" and "starting the engine..." or "contacting the engine...")
    if not finished then reaper.defer(tick) end
  end

  reaper.atexit(function()
    -- REAPER stops deferred scripts when asked to (or on exit): cancel what still runs.
    if finished then return end
    for _, job in ipairs(jobs) do
      if job.state ~= "done" and job.state ~= "error" then M.spawn(M.cancel_cmd(job.id)) end
      set_running(job.id, false)
    end
    drop_ping()
    M.ui_close()
  end)

  M.ui_open(batch.title)
  new_ping()
  reaper.defer(tick)
end

---------------------------------------------------------------- landing results on the timeline

-- A take playing `path` from its start, added to item; `props` (take_info's) are copied to it.
function M.add_take(item, path, name, props)
  local take = reaper.AddTakeToMediaItem(item)
  local src = reaper.PCM_Source_CreateFromFile(path)
  reaper.SetMediaItemTake_Source(take, src)
  reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0)
  reaper.SetMediaItemTakeInfo_Value(take, "D_PLAYRATE", 1)
  for _, k in ipairs(TAKE_PROPS) do
    if props and props[k] then reaper.SetMediaItemTakeInfo_Value(take, k, props[k]) end
  end
  reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", name, true)
  return take
end

-- One take per path on item (named "name vK" when there are several), the first active.
function M.add_takes(item, paths, name, props)
  local first
  for k, path in ipairs(paths) do
    local take = M.add_take(item, path, #paths > 1 and string.format("%s v%d", name, k) or name, props)
    first = first or take
  end
  reaper.SetActiveTake(first)
  reaper.UpdateItemInProject(item)
end

-- New item on track over [pos, pos+len) with one take per path (the first active), no fades:
-- the engine's joins are already sample-exact.
function M.new_item(track, pos, len, paths, name, props)
  local item = reaper.AddMediaItemToTrack(track)
  reaper.SetMediaItemInfo_Value(item, "D_POSITION", pos)
  reaper.SetMediaItemInfo_Value(item, "D_LENGTH", len)
  reaper.SetMediaItemInfo_Value(item, "B_LOOPSRC", 0)
  reaper.SetMediaItemInfo_Value(item, "D_FADEINLEN", 0)
  reaper.SetMediaItemInfo_Value(item, "D_FADEOUTLEN", 0)
  M.add_takes(item, paths, name, props)
  return item
end

-- Inpaint result into the item itself: split at the region's edges, add the
-- result(s) as takes of the middle piece (the original take stays one click away).
function M.land_as_takes(item, a, b, paths, name, props)
  local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local mid = item
  if a > pos + EPS then mid = reaper.SplitMediaItem(item, a) end
  if b < pos + len - EPS then reaper.SplitMediaItem(mid, b) end
  M.add_takes(mid, paths, name, props)
  return mid
end

-- Warn (console) when the file's length is not the length it will play for.
function M.check_length(st, expect_seconds, sr)
  local seconds, got_sr = tonumber(st.seconds), tonumber(st.sr)
  if got_sr and got_sr ~= sr then
    M.log(string.format("the engine wrote %d Hz but the project runs at %d Hz", got_sr, sr))
  end
  if seconds and math.abs(seconds - expect_seconds) * sr > 1.01 then
    M.log(string.format("result is %.6f s long, expected %.6f s", seconds, expect_seconds))
  end
end

-- Lands every successful job inside one undo block and reports the failures.
-- place(job) does the edits for one job.
function M.land_all(jobs, undo_desc, undo_flags, place)
  local ok, errors, cancelled = {}, {}, 0
  for _, job in ipairs(jobs) do
    local st = job.status or {}
    if job.state == "done" and #st.paths > 0 then
      local missing
      for _, p in ipairs(st.paths) do if not reaper.file_exists(p) then missing = p end end
      if missing then
        errors[#errors + 1] = job.spec.label .. ": the engine reported a file REAPER cannot find: " .. missing
      else
        ok[#ok + 1] = job
      end
    elseif st.code == "cancelled" and job.user_cancelled then
      cancelled = cancelled + 1
    else
      errors[#errors + 1] = (#jobs > 1 and (job.spec.label .. ":\n") or "") .. M.describe_error(st.code, st.message)
    end
  end
  if #ok > 0 then
    reaper.Undo_BeginBlock()
    reaper.PreventUIRefresh(1)
    for _, job in ipairs(ok) do
      local err = place(job, job.status)   -- a text: the project changed so that the result cannot land
      if err then errors[#errors + 1] = err .. table.concat(job.status.paths, "\n") end
    end
    reaper.PreventUIRefresh(-1)
    reaper.UpdateArrange()
    reaper.Undo_EndBlock(undo_desc, undo_flags)
  end
  if cancelled > 0 then M.log(string.format("%d request(s) cancelled", cancelled)) end
  if #errors > 0 then M.msg(table.concat(errors, "\n\n")) end
  return #ok
end

---------------------------------------------------------------- options shared by the actions

function M.common_opts(grid, sr, downbeat, extra, kind)
  local opts = {
    { "bpm", M.fmt(grid.bpm) }, { "sig", grid.sig }, { "sr", string.format("%d", sr) },
  }
  if downbeat then opts[#opts + 1] = { "downbeat", M.fmt(downbeat) } end
  local backend = M.backend_for(kind or "inpaint")
  if backend ~= "" then opts[#opts + 1] = { "backend", backend } end
  if M.setting("out") ~= "" then opts[#opts + 1] = { "out", M.setting("out") } end
  for _, kv in ipairs(extra or {}) do opts[#opts + 1] = kv end
  return opts
end

function M.seed()
  local s = tonumber(M.setting("seed"))
  if s then return math.floor(s) end
  M.new_id("seed")  -- makes sure the generator is seeded
  return math.random(0, 999999)
end

-- Ask for one number; nil when cancelled or invalid (after telling the user).
function M.ask_number(title, caption, default, lo, hi, integer)
  local ok, text = reaper.GetUserInputs(title, 1, caption .. ",extrawidth=60", tostring(default))
  if not ok then return nil end
  local v = tonumber((text:gsub(",", ".")))
  if not v or v <= lo or v > hi or (integer and v ~= math.floor(v)) then
    M.msg(string.format("%s: please enter %s above %g and at most %g.", caption, integer and "a whole number" or "a number", lo, hi))
    return nil
  end
  if integer then return math.floor(v) end  -- "3.0" -> 3: the client wants an int
  return v
end

---------------------------------------------------------------- razor edits

-- Razor-edit areas on a track's media (P_RAZOREDITS: "start end GUID" triples; GUID "" is
-- the media lane, others are envelopes), sorted, overlapping areas merged. Seconds.
function M.razor_areas(track)
  local ok, text = reaper.GetSetMediaTrackInfo_String(track, "P_RAZOREDITS", "", false)
  local areas = {}
  if not ok or not text or text == "" then return areas end
  for a, b, guid in text:gmatch('(%S+)%s+(%S+)%s+(%S+)') do
    a, b = tonumber(a), tonumber(b)
    if a and b and b - a > EPS and guid == '""' then areas[#areas + 1] = { a, b } end
  end
  table.sort(areas, function(x, y) return x[1] < y[1] end)
  local merged = {}
  for _, r in ipairs(areas) do
    local last = merged[#merged]
    if last and r[1] <= last[2] + EPS then last[2] = math.max(last[2], r[2]) else merged[#merged + 1] = { r[1], r[2] } end
  end
  return merged
end

-- Every track with razor-edit areas on its media: { {track, areas}, ... }.
function M.razor_tracks()
  local out = {}
  for i = 0, reaper.CountTracks(0) - 1 do
    local track = reaper.GetTrack(0, i)
    local areas = M.razor_areas(track)
    if #areas > 0 then out[#out + 1] = { track = track, areas = areas } end
  end
  return out
end

-- What Inpaint works on: razor-edit areas when there are any (one request per track: the
-- span from the first area's start to the last one's end, only the areas regenerated),
-- else the time selection (one request per item under it). Returns spans {item, a, b,
-- areas or nil} in project seconds, problems, and a word for titles; or nil and a message.
function M.inpaint_spans()
  local razor = M.razor_tracks()
  if #razor > 0 then
    local spans, problems = {}, {}
    for _, rt in ipairs(razor) do
      local a, b = rt.areas[1][1], rt.areas[#rt.areas][2]
      local found, found_len
      for i = 0, reaper.CountTrackMediaItems(rt.track) - 1 do
        local item = reaper.GetTrackMediaItem(rt.track, i)
        local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
        local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
        -- of overlapping items covering the areas, the longest (the most context; a result item holds none)
        if pos <= a + EPS and pos + len >= b - EPS and (not found or len > found_len + EPS) then
          found, found_len = item, len
        end
      end
      if found then
        spans[#spans + 1] = { item = found, a = a, b = b, areas = #rt.areas > 1 and rt.areas or nil }
      else
        problems[#problems + 1] = M.track_label(rt.track) .. ": the razor-edit areas must lie inside one audio item "
          .. string.format("(%.3f-%.3f s is not covered by a single item).", a, b)
      end
    end
    return spans, problems, "razor"
  end
  local s, e = M.time_selection()
  if not s then
    return nil, "Set a time selection over the part to regenerate (drag in the ruler), or razor-edit the parts "
      .. "(Alt+drag on the item), then select the item or its track and run the action again."
  end
  local items = M.items_under(s, e)
  if #items == 0 then
    return nil, "No audio item under the time selection. Select the item (or its track) that the time selection "
      .. "covers and run the action again."
  end
  local spans = {}
  for _, item in ipairs(items) do
    local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
    local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
    spans[#spans + 1] = { item = item, a = math.max(s, pos), b = math.min(e, pos + len) }
  end
  return spans, {}, "selection"
end

---------------------------------------------------------------- actions

-- Inpaint (variations = 1) or Variations (variations = N) of the time selection or the
-- razor-edit areas. hit = "remove": a selected drum hit is taken out, not replaced
-- (the engine's default, "replace", regenerates it as a hit of the same kind).
function M.inpaint_action(variations, hit)
  variations = variations or 1
  local what = hit == "remove" and "Remove hit" or (variations > 1 and "Variations" or "Inpaint")
  local spans, problems, source = M.inpaint_spans()
  if not spans then return M.msg(problems) end
  local targets = {}
  for _, span in ipairs(spans) do
    local info, err = M.take_info(span.item)
    if not info then
      problems[#problems + 1] = err
    else
      local a, b = span.a, span.b
      local s0, s1 = M.to_source(info, a), M.to_source(info, b)
      if s0 < -EPS or s1 > info.src_len + EPS then
        problems[#problems + 1] = info.label .. ": the selection reaches past the take's file (the item is "
          .. "extended or loops its source). Glue the item (Item: Glue items) first."
      elseif info.src_len - (s1 - s0) < M.MIN_CONTEXT then
        problems[#problems + 1] = string.format("%s: the item's file is shorter than the context needed: "
          .. "the selection covers %.2f s of a %.2f s file; at least %.1f s of audio around it is needed.",
          info.label, s1 - s0, info.src_len, M.MIN_CONTEXT)
      else
        info.a, info.b, info.s0, info.s1 = a, b, math.max(s0, 0), math.min(s1, info.src_len)
        if span.areas then
          -- regions option: "s1:e1,s2:e2", seconds in the file, inside [start, end)
          local parts = {}
          for _, r in ipairs(span.areas) do
            parts[#parts + 1] = M.fmt(math.max(M.to_source(info, r[1]), info.s0)) .. ":"
              .. M.fmt(math.min(M.to_source(info, r[2]), info.s1))
          end
          info.regions = table.concat(parts, ",")
          info.areas = span.areas
        end
        targets[#targets + 1] = info
      end
    end
  end
  if #problems > 0 then return M.msg(table.concat(problems, "\n\n")) end
  if variations > 1 and #targets > 1 then
    return M.msg("Variations work on one item at a time: select a single item under the time selection.")
  end
  local sr = M.project_sr(targets[1].src_sr)
  local seed = M.seed()
  local landing = M.setting("landing") == "item" and "item" or "take"
  local specs = {}
  for _, info in ipairs(targets) do
    local grid = M.grid_at(info.a)
    if M.tempo_changes_in(info.pos, info.pos + info.len) then
      M.log(string.format("%s: the tempo or time signature changes inside this item; Segue hears the whole "
        .. "file at %g BPM %s, the tempo at the selection.", info.label, grid.bpm, grid.sig))
    end
    local extra = { { "seed", tostring(seed) } }
    if variations > 1 then extra[#extra + 1] = { "variations", tostring(variations) } end
    if M.setting("prompt") ~= "" then extra[#extra + 1] = { "prompt", M.setting("prompt") } end
    if info.regions then extra[#extra + 1] = { "regions", info.regions } end
    if hit == "remove" then extra[#extra + 1] = { "hit", "remove" } end
    specs[#specs + 1] = {
      sub = "inpaint", info = info, label = info.label,
      positional = { info.path, M.fmt(info.s0), M.fmt(info.s1) },
      opts = M.common_opts(grid, sr, M.downbeat_in_source(info, grid), extra, "inpaint"),
    }
  end
  local where
  if source == "razor" then
    local n = 0
    for _, info in ipairs(targets) do n = n + (info.areas and #info.areas or 1) end
    where = string.format("%d razor area%s", n, n > 1 and "s" or "")
  else
    where = string.format("%.2f-%.2f s", targets[1].a, targets[1].b)
  end
  M.run_batch {
    title = string.format("Segue: %s %s (%d item%s)", what:lower(), where, #specs, #specs > 1 and "s" or ""),
    specs = specs,
    on_done = function(jobs)
      M.land_all(jobs, "Segue: " .. what:lower() .. (source == "razor" and " razor areas" or " time selection"), 4,
        function(job, st)
          local info = job.spec.info
          M.check_length(st, info.b - info.a, sr)
          local delta, err = M.moved_since(info)
          if not delta then return err end
          local a, b = info.a + delta, info.b + delta
          local pos = reaper.GetMediaItemInfo_Value(info.item, "D_POSITION")
          local len = reaper.GetMediaItemInfo_Value(info.item, "D_LENGTH")
          if landing ~= "item" and (a < pos - EPS or b > pos + len + EPS) then
            return info.label .. ": the item was trimmed so that the region is no longer inside it, so the "
              .. "result was not placed. It is in:\n"
          end
          local name = string.format("Segue %s seed %d", what:lower(), seed)
          if landing == "item" then
            M.new_item(reaper.GetMediaItem_Track(info.item), a, b - a, st.paths, name, info.props)
          else
            M.land_as_takes(info.item, a, b, st.paths, name, info.props)
          end
        end)
    end,
  }
end

function M.remove_hit_action()
  return M.inpaint_action(1, "remove")
end

function M.variations_action()
  local n = M.ask_number("Segue: variations", "Number of variations (2-8)", M.setting("variations"), 1, 8, true)
  if not n then return end
  M.set_setting("variations", n)
  return M.inpaint_action(n)
end

function M.continue_action()
  local n = reaper.CountSelectedMediaItems(0)
  if n == 0 then return M.msg("Select the audio item to continue, then run the action again.") end
  local targets, problems = {}, {}
  for i = 0, n - 1 do
    local info, err = M.take_info(reaper.GetSelectedMediaItem(0, i))
    if not info then
      problems[#problems + 1] = err
    else
      info.at = M.to_source(info, info.pos + info.len)
      if info.at > info.src_len + EPS then
        problems[#problems + 1] = info.label .. ": the item ends after its file does (it is extended or loops "
          .. "its source). Glue the item (Item: Glue items) first."
      elseif info.at < M.MIN_CONTEXT then
        problems[#problems + 1] = string.format("%s: the item is shorter than the context needed: %.2f s of audio "
          .. "before its end, at least %.1f s needed.", info.label, math.max(info.at, 0), M.MIN_CONTEXT)
      else
        info.at = math.min(info.at, info.src_len)
        targets[#targets + 1] = info
      end
    end
  end
  if #problems > 0 then return M.msg(table.concat(problems, "\n\n")) end
  local bars = M.ask_number("Segue: continue", "Bars to continue", M.setting("bars"), 0, 64, false)
  if not bars then return end
  M.set_setting("bars", bars)
  local sr = M.project_sr(targets[1].src_sr)
  local seed = M.seed()
  local specs = {}
  for _, info in ipairs(targets) do
    local t_end = info.pos + info.len
    local grid = M.grid_at(t_end)
    info.new_pos, info.new_len = t_end, bars * grid.bar_seconds
    if M.tempo_changes_in(t_end, t_end + info.new_len) then
      M.log(string.format("%s: the tempo or time signature changes within the %g bars after the item; the "
        .. "continuation keeps %g BPM %s (the tempo at the item's end) and lasts %.3f s.", info.label, bars,
        grid.bpm, grid.sig, info.new_len))
    end
    specs[#specs + 1] = {
      sub = "continue", info = info, label = info.label,
      positional = { info.path, M.fmt(info.at), M.fmt(bars) },
      opts = M.common_opts(grid, sr, M.downbeat_in_source(info, grid), { { "seed", tostring(seed) } }, "continue"),
    }
  end
  M.run_batch {
    title = string.format("Segue: continue %g bars (%d item%s)", bars, #specs, #specs > 1 and "s" or ""),
    specs = specs,
    on_done = function(jobs)
      M.land_all(jobs, "Segue: continue item", 4, function(job, st)
        local info = job.spec.info
        M.check_length(st, info.new_len, sr)
        local delta, err = M.moved_since(info)
        if not delta then return err end
        M.new_item(reaper.GetMediaItem_Track(info.item), info.new_pos + delta, info.new_len, st.paths,
                   string.format("Segue continue %g bars seed %d", bars, seed), info.props)
      end)
    end,
  }
end

function M.generate_action()
  local s, e = M.time_selection()
  if not s then return M.msg("Set a time selection where the new audio should go, select a track, and run the action again.") end
  local track = reaper.GetSelectedTrack(0, 0)
  if not track and reaper.CountSelectedMediaItems(0) > 0 then
    track = reaper.GetMediaItem_Track(reaper.GetSelectedMediaItem(0, 0))
  end
  if not track then return M.msg("Select the track to generate into, then run the action again.") end
  local grid = M.grid_at(s)
  local bars = (e - s) / grid.bar_seconds
  if bars > 64 then
    return M.msg(string.format("The time selection is %.1f bars long; Segue generates at most 64 bars at once.", bars))
  end
  local ok, prompt = reaper.GetUserInputs("Segue: generate", 1, "Prompt,extrawidth=320", M.setting("prompt"))
  if not ok then return end
  prompt = prompt:gsub('"', "'"):gsub("[\r\n]", " ")
  if prompt ~= "" then M.set_setting("prompt", prompt) end
  local sr = M.project_sr(44100)
  local seed = M.seed()
  local extra = { { "seed", tostring(seed) } }
  if prompt ~= "" then extra[#extra + 1] = { "prompt", prompt } end
  M.run_batch {
    title = string.format("Segue: generate %.2f bars", bars),
    specs = { { sub = "generate", label = M.track_label(track), positional = { M.fmt(bars) },
                opts = M.common_opts(grid, sr, nil, extra, "generate") } },
    on_done = function(jobs)
      M.land_all(jobs, "Segue: generate into time selection", 4, function(job, st)
        M.check_length(st, e - s, sr)
        M.new_item(track, s, e - s, st.paths, string.format("Segue generate seed %d", seed))
      end)
    end,
  }
end

function M.cancel_action()
  local ids = running_ids()
  if #ids == 0 then return M.msg("No Segue request is running.") end
  reaper.SetExtState(M.SECTION, "cancel", "1", false)
  for _, id in ipairs(ids) do
    if not id:match("^reaper%-wait%-") then M.spawn(M.cancel_cmd(id)) end
  end
  M.log("cancel sent for " .. table.concat(ids, ", "))
end

M.SETTINGS_FIELDS = {
  { "exe", "Segue program (full path)" },
  { "host", "Engine host" },
  { "port", "Engine port" },
  { "backend_inpaint", "Backend: inpaint (blank: engine's)" },
  { "backend_continue", "Backend: continue (blank: engine's)" },
  { "backend_generate", "Backend: generate (blank: engine's)" },
  { "token", "Token (blank: none)" },
  { "prompt", "Default prompt" },
  { "landing", "Land results as: take / item" },
  { "autostart", "Start the engine automatically (y/n)" },
  { "out", "Output folder (blank: default)" },
  { "bars", "Continue: default bars" },
  { "variations", "Variations: default count" },
  { "seed", "Seed (blank: random)" },
}

local function yes(v) v = v:lower(); return v == "y" or v == "yes" or v == "1" or v == "true" or v == "on" end

function M.settings_action()
  local captions, values = {}, {}
  for _, f in ipairs(M.SETTINGS_FIELDS) do
    captions[#captions + 1] = f[2]
    local v = M.setting(f[1])
    if f[1] == "autostart" then v = v == "1" and "y" or "n" end
    values[#values + 1] = v
  end
  local ok, text = reaper.GetUserInputs("Segue settings", #M.SETTINGS_FIELDS,
    table.concat(captions, ",") .. ",separator=\n,extrawidth=260", table.concat(values, "\n"))
  if not ok then return false end
  local got = {}
  for v in (text .. "\n"):gmatch("(.-)\n") do got[#got + 1] = v:match("^%s*(.-)%s*$") end
  local new, problems = {}, {}
  for i, f in ipairs(M.SETTINGS_FIELDS) do new[f[1]] = got[i] or "" end
  local port = tonumber(new.port)
  if not port or port < 1 or port > 65535 or port ~= math.floor(port) then problems[#problems + 1] = "Engine port must be 1-65535." end
  new.landing = new.landing:lower()
  if new.landing ~= "take" and new.landing ~= "item" then problems[#problems + 1] = "Land results as: type take or item." end
  new.autostart = yes(new.autostart) and "1" or "0"
  if new.out ~= "" and not M.is_abs(new.out) then problems[#problems + 1] = "Output folder must be an absolute path." end
  local bars = tonumber(new.bars)
  if not bars or bars <= 0 or bars > 64 then problems[#problems + 1] = "Continue bars must be above 0 and at most 64." end
  local nv = tonumber(new.variations)
  if not nv or nv < 2 or nv > 8 or nv ~= math.floor(nv) then problems[#problems + 1] = "Variations must be 2-8." end
  if new.seed ~= "" and not (tonumber(new.seed) and tonumber(new.seed) >= 0) then problems[#problems + 1] = "Seed must be blank or a whole number." end
  if new.exe == "" then new.exe = M.DEFAULTS.exe end
  for _, key in ipairs({ "exe", "host", "token", "prompt", "out", "backend_inpaint", "backend_continue",
                         "backend_generate" }) do
    if new[key]:find('"', 1, true) then problems[#problems + 1] = "No double quotes please (" .. key .. ")." end
  end
  if #problems > 0 then M.msg("Settings not saved:\n\n" .. table.concat(problems, "\n")); return false end
  for _, f in ipairs(M.SETTINGS_FIELDS) do M.set_setting(f[1], new[f[1]]) end
  M.set_setting("backend", "")  -- the per-action fields replace the old single one
  M.log("settings saved")
  return true
end

return M
