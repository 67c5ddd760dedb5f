-- A stand-in for REAPER's `reaper` and `gfx` tables, for running the Segue
-- ReaScripts under plain Lua 5.4 in tests.
--
-- It keeps a small fake project (tracks, items, takes, sources read from real
-- WAV headers, a tempo map with signature changes, the time selection, ExtState)
-- and implements the API calls the scripts use with their documented Lua
-- signatures (https://www.reaper.fm/sdk/reascript/reascripthelp.html). It is
-- strict where REAPER would silently misbehave: a wrong handle type or an
-- unknown parameter name raises an error, so typos fail the tests.
--
-- ExecProcess really runs the command (REAPER's own parsing: split on spaces
-- outside double quotes, no shell), in the background for timeouts < 0, and
-- the defer queue is driven by World:drive() with real sleeps in between.

local W = {}
W.__index = W

local EPS = 1e-9

---------------------------------------------------------------- helpers

local function now()
  local f = io.open("/proc/uptime", "r")
  if f then
    local t = f:read("n")
    f:close()
    if t then return t end
  end
  return os.time()
end

local function shq(s)  -- single-quote for /bin/sh
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- REAPER-style command-line split: spaces separate words, double quotes group.
local function split_cmdline(cmd)
  local args, cur, inq, have = {}, {}, false, false
  for i = 1, #cmd do
    local c = cmd:sub(i, i)
    if c == '"' then
      inq = not inq; have = true
    elseif c == " " and not inq then
      if have then args[#args + 1] = table.concat(cur); cur = {}; have = false end
    else
      cur[#cur + 1] = c; have = true
    end
  end
  if inq then error("ExecProcess: unbalanced double quote in command line: " .. cmd) end
  if have then args[#args + 1] = table.concat(cur) end
  return args
end
W.split_cmdline = split_cmdline

-- Reads a RIFF/WAVE header: sample rate, channels, frames, format tag, bits.
local function read_wav(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local head = f:read(12)
  if not head or #head < 12 or head:sub(1, 4) ~= "RIFF" or head:sub(9, 12) ~= "WAVE" then
    f:close(); return nil
  end
  local info = {}
  while true do
    local ch = f:read(8)
    if not ch or #ch < 8 then break end
    local id, size = ch:sub(1, 4), string.unpack("<I4", ch, 5)
    if id == "fmt " then
      local body = f:read(size)
      info.format, info.channels, info.sr, _, info.block_align, info.bits = string.unpack("<I2I2I4I4I2I2", body)
      if size % 2 == 1 then f:read(1) end
    elseif id == "data" then
      info.data_bytes = size
      break
    else
      f:seek("cur", size + size % 2)
    end
  end
  f:close()
  if not info.sr or not info.data_bytes then return nil end
  info.frames = info.data_bytes // info.block_align
  return info
end
W.read_wav = read_wav

---------------------------------------------------------------- world

function W.new(case)
  local w = setmetatable({}, W)
  w.case = case
  w.t0 = now()
  w.queue, w.atexit, w.ops, w.undo, w.messages, w.console = {}, {}, {}, {}, {}, {}
  w.exec, w.inputs_asked, w.errors = {}, {}, {}
  w.undo_depth, w.refresh_depth = 0, 0
  w.next_id = 1
  w.ext = {}
  for sec, keys in pairs(case.extstate or {}) do
    w.ext[sec] = {}
    for k, v in pairs(keys) do w.ext[sec][k] = { value = tostring(v), persist = true } end
  end
  w.inputs = case.inputs or {}
  w.gfx = { opened = false, closed = false, inits = {}, frames = 0, strings = {}, pending_chars = {} }
  w.events = case.events or {}
  w.exec_log = case.exec_log or "/dev/null"
  local p = case.project or {}
  w.srate, w.srate_use = p.srate or 44100, p.srate_use and 1 or 0
  w.device_srate = p.device_srate
  w.sel = p.time_selection and { p.time_selection[1], p.time_selection[2] } or { 0, 0 }
  w:build_tempo(p.tempo or { { time = 0, bpm = 120, num = 4, den = 4 } })
  w.tracks = {}
  for i, tspec in ipairs(p.tracks or {}) do
    local tr = w:new_obj("track", { name = tspec.name or "", selected = tspec.selected or false, items = {},
                                    razor = tspec.razor or "" })
    w.tracks[#w.tracks + 1] = tr
    for _, ispec in ipairs(tspec.items or {}) do
      local item = w:new_item(tr)
      item.pos, item.len = ispec.position, ispec.length
      item.selected = ispec.selected or false
      item.loopsrc = ispec.loopsrc and 1 or 0
      for _, tk in ipairs(ispec.takes or {}) do
        local take = w:new_take(item)
        take.startoffs, take.playrate, take.name = tk.startoffs or 0, tk.playrate or 1, tk.name or ""
        take.vol, take.pitch, take.chanmode, take.pan = tk.vol or 1, tk.pitch or 0, tk.chanmode or 0, tk.pan or 0
        take.stretch = tk.stretch or {}
        if tk.midi then
          take.source = w:new_obj("source", { type = "MIDI", file = "", length = 8, sr = 0, channels = 0 })
        else
          take.source = assert(w:source_from_file(tk.file), "case: cannot read WAV " .. tostring(tk.file))
          if tk.section then take.source.type = "SECTION" end
        end
      end
      item.active = ispec.active or 1
    end
  end
  return w
end

function W:new_obj(kind, fields)
  fields.kind = kind
  fields.uid = self.next_id
  self.next_id = self.next_id + 1
  return fields
end

function W:new_item(track)
  local item = self:new_obj("item", { track = track, pos = 0, len = 0, takes = {}, active = 1,
                                      selected = false, loopsrc = 1, mute = 0 })
  track.items[#track.items + 1] = item
  return item
end

function W:new_take(item)
  local take = self:new_obj("take", { item = item, startoffs = 0, playrate = 1, name = "", vol = 1, pitch = 0, chanmode = 0, pan = 0, stretch = {} })
  item.takes[#item.takes + 1] = take
  return take
end

function W:source_from_file(path)
  local info = read_wav(path)
  if not info then return nil end
  return self:new_obj("source", { type = "WAVE", file = path, sr = info.sr, channels = info.channels,
                                  frames = info.frames, length = info.frames / info.sr,
                                  format = info.format, bits = info.bits })
end

function W:op(name, detail)
  self.ops[#self.ops + 1] = { fn = name, detail = detail, in_undo = self.undo_depth > 0, t = now() - self.t0 }
  if self.undo_depth > 0 then
    local blk = self.undo[#self.undo]
    blk.ops[#blk.ops + 1] = name
  end
end

---------------------------------------------------------------- tempo map

-- markers: {time, bpm, num?, den?} sorted; a marker with num/den starts a new measure.
function W:build_tempo(markers)
  local m = {}
  for _, x in ipairs(markers) do m[#m + 1] = { time = x.time, bpm = x.bpm, num = x.num, den = x.den } end
  table.sort(m, function(a, b) return a.time < b.time end)
  if m[1].time > 0 then table.insert(m, 1, { time = 0, bpm = 120, num = 4, den = 4 }) end
  if not m[1].num then m[1].num, m[1].den = 4, 4 end
  local qn, regions = 0, {}
  for i, x in ipairs(m) do
    if i > 1 then
      local prev = m[i - 1]
      qn = qn + (x.time - prev.time) * prev.bpm / 60
    end
    x.qn = qn
    if x.num then
      local m0 = 0
      if #regions > 0 then
        local r = regions[#regions]
        m0 = r.m0 + math.ceil((qn - r.qn0) / r.barqn - 1e-9)
      end
      regions[#regions + 1] = { qn0 = qn, m0 = m0, num = x.num, den = x.den, barqn = x.num * 4 / x.den }
    else
      x.num, x.den = m[i - 1].num, m[i - 1].den
    end
  end
  self.tempo, self.regions = m, regions
end

function W:marker_at_time(t)
  local found = self.tempo[1]
  for _, x in ipairs(self.tempo) do if x.time <= t + EPS then found = x end end
  return found
end

function W:time_to_qn(t)
  local x = self:marker_at_time(t)
  return x.qn + (t - x.time) * x.bpm / 60
end

function W:qn_to_time(qn)
  local found = self.tempo[1]
  for _, x in ipairs(self.tempo) do if x.qn <= qn + EPS then found = x end end
  return found.time + (qn - found.qn) * 60 / found.bpm
end

function W:region_at_qn(qn)
  local found = self.regions[1]
  for _, r in ipairs(self.regions) do if r.qn0 <= qn + EPS then found = r end end
  return found
end

---------------------------------------------------------------- ordered views

function W:items_of(track)
  local list = {}
  for _, it in ipairs(track.items) do list[#list + 1] = it end
  table.sort(list, function(a, b) if a.pos ~= b.pos then return a.pos < b.pos end return a.uid < b.uid end)
  return list
end

function W:selected_items()
  local list = {}
  for _, tr in ipairs(self.tracks) do
    for _, it in ipairs(self:items_of(tr)) do if it.selected then list[#list + 1] = it end end
  end
  return list
end

function W:selected_tracks()
  local list = {}
  for _, tr in ipairs(self.tracks) do if tr.selected then list[#list + 1] = tr end end
  return list
end

---------------------------------------------------------------- running commands

function W:run_command(cmd, timeout)
  local argv = split_cmdline(cmd)
  local parts = {}
  for _, a in ipairs(argv) do parts[#parts + 1] = shq(a) end
  local sh = table.concat(parts, " ")
  self.exec[#self.exec + 1] = { cmd = cmd, argv = argv, timeout = timeout, t = now() - self.t0 }
  if timeout < 0 then
    local ok = os.execute(sh .. " >>" .. shq(self.exec_log) .. " 2>&1 </dev/null &")
    if not ok then return nil end
    return ""
  end
  local p = io.popen(sh .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return tostring(code or 0) .. "\n" .. out
end

---------------------------------------------------------------- the reaper table

local function need(kind, obj, fn)
  if type(obj) ~= "table" or obj.kind ~= kind then
    error(string.format("%s: expected a %s, got %s", fn, kind, type(obj) == "table" and tostring(obj.kind) or type(obj)), 3)
  end
end

local function need_proj(proj, fn)
  if proj ~= 0 and proj ~= nil then error(fn .. ": only the current project (0) exists in the stand-in", 3) end
end

function W:install()
  local w = self
  local r = {}

  -- time selection
  function r.GetSet_LoopTimeRange(isSet, isLoop, start, endt, allowautoseek)
    assert(type(isSet) == "boolean" and type(isLoop) == "boolean", "GetSet_LoopTimeRange: booleans expected")
    if isSet then w.sel = { start, endt }; w:op("GetSet_LoopTimeRange(set)") end
    return w.sel[1], w.sel[2]
  end

  -- tracks
  function r.CountTracks(proj) need_proj(proj, "CountTracks"); return #w.tracks end
  function r.GetTrack(proj, idx) need_proj(proj, "GetTrack"); return w.tracks[idx + 1] end
  function r.CountSelectedTracks(proj) need_proj(proj, "CountSelectedTracks"); return #w:selected_tracks() end
  function r.GetSelectedTrack(proj, idx) need_proj(proj, "GetSelectedTrack"); return w:selected_tracks()[idx + 1] end
  function r.GetMediaTrackInfo_Value(tr, parm)
    need("track", tr, "GetMediaTrackInfo_Value")
    if parm == "IP_TRACKNUMBER" then
      for i, x in ipairs(w.tracks) do if x == tr then return i end end
    elseif parm == "I_SELECTED" then return tr.selected and 1 or 0 end
    error("GetMediaTrackInfo_Value: parameter not in the stand-in: " .. tostring(parm))
  end
  function r.GetSetMediaTrackInfo_String(tr, parm, str, set)
    need("track", tr, "GetSetMediaTrackInfo_String")
    -- P_RAZOREDITS: "start end GUID" triples, GUID "" for the track's media (REAPER 6.24+).
    local field = ({ P_NAME = "name", P_RAZOREDITS = "razor" })[parm]
    if not field then error("GetSetMediaTrackInfo_String: parameter not in the stand-in: " .. tostring(parm)) end
    if set then tr[field] = str; w:op("GetSetMediaTrackInfo_String(set)") end
    return true, tr[field]
  end
  function r.CountTrackMediaItems(tr) need("track", tr, "CountTrackMediaItems"); return #tr.items end
  function r.GetTrackMediaItem(tr, idx) need("track", tr, "GetTrackMediaItem"); return w:items_of(tr)[idx + 1] end

  -- items
  function r.CountSelectedMediaItems(proj) need_proj(proj, "CountSelectedMediaItems"); return #w:selected_items() end
  function r.GetSelectedMediaItem(proj, idx) need_proj(proj, "GetSelectedMediaItem"); return w:selected_items()[idx + 1] end
  function r.GetMediaItem_Track(item) need("item", item, "GetMediaItem_Track"); return item.track end
  local item_parms = { D_POSITION = "pos", D_LENGTH = "len", B_LOOPSRC = "loopsrc", B_MUTE = "mute",
                       D_FADEINLEN = "fadein", D_FADEOUTLEN = "fadeout" }
  function r.GetMediaItemInfo_Value(item, parm)
    need("item", item, "GetMediaItemInfo_Value")
    if parm == "B_UISEL" then return item.selected and 1 or 0 end
    if parm == "I_CURTAKE" then return item.active - 1 end
    local f = item_parms[parm]
    if not f then error("GetMediaItemInfo_Value: parameter not in the stand-in: " .. tostring(parm)) end
    return item[f]
  end
  function r.SetMediaItemInfo_Value(item, parm, value)
    need("item", item, "SetMediaItemInfo_Value")
    assert(type(value) == "number", "SetMediaItemInfo_Value: number expected")
    w:op("SetMediaItemInfo_Value", parm)
    if parm == "B_UISEL" then item.selected = value ~= 0; return true end
    local f = item_parms[parm]
    if not f then error("SetMediaItemInfo_Value: parameter not in the stand-in: " .. tostring(parm)) end
    item[f] = value
    return true
  end
  function r.AddMediaItemToTrack(tr)
    need("track", tr, "AddMediaItemToTrack")
    w:op("AddMediaItemToTrack")
    return w:new_item(tr)
  end
  function r.SplitMediaItem(item, position)
    need("item", item, "SplitMediaItem")
    w:op("SplitMediaItem", position)
    if position <= item.pos + EPS or position >= item.pos + item.len - EPS then return nil end
    local right = w:new_item(item.track)
    right.pos, right.len = position, item.pos + item.len - position
    right.selected, right.loopsrc, right.mute, right.active = item.selected, item.loopsrc, item.mute, item.active
    for _, t in ipairs(item.takes) do
      local nt = w:new_take(right)
      nt.source, nt.playrate, nt.name, nt.vol, nt.pitch, nt.chanmode, nt.pan = t.source, t.playrate, t.name, t.vol, t.pitch, t.chanmode, t.pan
      nt.startoffs = t.startoffs + (position - item.pos) * t.playrate
    end
    item.len = position - item.pos
    return right
  end
  function r.UpdateItemInProject(item) need("item", item, "UpdateItemInProject") end
  function r.UpdateArrange() end
  function r.PreventUIRefresh(n) w.refresh_depth = w.refresh_depth + n end


  function r.GetTakeNumStretchMarkers(take) need("take", take, "GetTakeNumStretchMarkers"); w.stretch_queried = true; return #take.stretch end
  function r.DeleteTrackMediaItem(tr, item)
    need("track", tr, "DeleteTrackMediaItem"); need("item", item, "DeleteTrackMediaItem")
    for i, x in ipairs(tr.items) do if x == item then table.remove(tr.items, i) end end
    item.kind = "deleted-item"
    return true
  end
  function r.ValidatePtr2(proj, ptr, typ) return type(ptr) == "table" and ptr.kind == ({["MediaItem*"]="item",["MediaItem_Take*"]="take",["MediaTrack*"]="track"})[typ] end
  function r.ValidatePtr(ptr, typ) return r.ValidatePtr2(0, ptr, typ) end
  -- takes
  function r.GetActiveTake(item) need("item", item, "GetActiveTake"); return item.takes[item.active] end
  function r.CountTakes(item) need("item", item, "CountTakes"); return #item.takes end
  function r.GetTake(item, idx) need("item", item, "GetTake"); return item.takes[idx + 1] end
  function r.SetActiveTake(take)
    need("take", take, "SetActiveTake")
    w:op("SetActiveTake")
    for i, t in ipairs(take.item.takes) do if t == take then take.item.active = i end end
  end
  function r.AddTakeToMediaItem(item)
    need("item", item, "AddTakeToMediaItem")
    w:op("AddTakeToMediaItem")
    return w:new_take(item)
  end
  function r.TakeIsMIDI(take) need("take", take, "TakeIsMIDI"); return take.source ~= nil and take.source.type == "MIDI" end
  local take_parms = { D_STARTOFFS = "startoffs", D_PLAYRATE = "playrate", D_VOL = "vol", D_PITCH = "pitch",
                       I_CHANMODE = "chanmode", D_PAN = "pan" }
  function r.GetMediaItemTakeInfo_Value(take, parm)
    need("take", take, "GetMediaItemTakeInfo_Value")
    local f = take_parms[parm]
    if not f then error("GetMediaItemTakeInfo_Value: parameter not in the stand-in: " .. tostring(parm)) end
    return take[f]
  end
  function r.SetMediaItemTakeInfo_Value(take, parm, value)
    need("take", take, "SetMediaItemTakeInfo_Value")
    assert(type(value) == "number", "SetMediaItemTakeInfo_Value: number expected")
    w:op("SetMediaItemTakeInfo_Value", parm)
    local f = take_parms[parm]
    if not f then error("SetMediaItemTakeInfo_Value: parameter not in the stand-in: " .. tostring(parm)) end
    take[f] = value
    return true
  end
  function r.GetSetMediaItemTakeInfo_String(take, parm, str, set)
    need("take", take, "GetSetMediaItemTakeInfo_String")
    if parm ~= "P_NAME" then error("GetSetMediaItemTakeInfo_String: parameter not in the stand-in: " .. tostring(parm)) end
    if set then take.name = str; w:op("GetSetMediaItemTakeInfo_String(set)") end
    return true, take.name
  end
  function r.GetMediaItemTake_Source(take) need("take", take, "GetMediaItemTake_Source"); return take.source end
  function r.SetMediaItemTake_Source(take, src)
    need("take", take, "SetMediaItemTake_Source"); need("source", src, "SetMediaItemTake_Source")
    w:op("SetMediaItemTake_Source", src.file)
    take.source = src
    return true
  end

  -- sources (the second, buffer argument of older API versions is accepted and ignored)
  function r.PCM_Source_CreateFromFile(path)
    assert(type(path) == "string", "PCM_Source_CreateFromFile: string expected")
    return w:source_from_file(path)
  end
  -- The current signatures (REAPER 6.47+) take the source only; the old form passed a buffer too.
  function r.GetMediaSourceFileName(src, ...)
    need("source", src, "GetMediaSourceFileName")
    if select("#", ...) > 0 then error("GetMediaSourceFileName(src, buf): the pre-6.47 form; call GetMediaSourceFileName(src)") end
    return src.file
  end
  function r.GetMediaSourceType(src, ...)
    need("source", src, "GetMediaSourceType")
    if select("#", ...) > 0 then error("GetMediaSourceType(src, buf): the pre-6.47 form; call GetMediaSourceType(src)") end
    return src.type
  end
  function r.GetMediaSourceLength(src) need("source", src, "GetMediaSourceLength"); return src.length, src.type == "MIDI" end
  function r.GetMediaSourceSampleRate(src) need("source", src, "GetMediaSourceSampleRate"); return src.sr end
  function r.GetMediaSourceNumChannels(src) need("source", src, "GetMediaSourceNumChannels"); return src.channels end

  -- tempo map
  function r.TimeMap_GetTimeSigAtTime(proj, t)
    need_proj(proj, "TimeMap_GetTimeSigAtTime")
    local x = w:marker_at_time(t)
    return x.num, x.den, x.bpm
  end
  -- returns beats since measure (in denominator notes), measures, cml, fullbeats, cdenom
  function r.TimeMap2_timeToBeats(proj, t)
    need_proj(proj, "TimeMap2_timeToBeats")
    local qn = w:time_to_qn(t)
    local reg = w:region_at_qn(qn)
    local rel = qn - reg.qn0
    local m = math.floor(rel / reg.barqn + 1e-9)
    local beats = (rel - m * reg.barqn) * reg.den / 4
    return beats, reg.m0 + m, reg.num, qn * reg.den / 4, reg.den
  end
  function r.TimeMap2_beatsToTime(proj, tpos, measuresIn)
    need_proj(proj, "TimeMap2_beatsToTime")
    if measuresIn == nil then return w:qn_to_time(tpos) end
    local found = w.regions[1]
    for _, reg in ipairs(w.regions) do if reg.m0 <= measuresIn + EPS then found = reg end end
    return w:qn_to_time(found.qn0 + (measuresIn - found.m0) * found.barqn + tpos * 4 / found.den)
  end
  -- the index of the tempo/time signature marker in effect at time t (0-based; -1 before the first)
  function r.FindTempoTimeSigMarker(proj, t)
    need_proj(proj, "FindTempoTimeSigMarker")
    local found = -1
    for i, x in ipairs(w.tempo) do if x.time <= t + EPS then found = i - 1 end end
    return found
  end
  function r.TimeMap2_timeToQN(proj, t) need_proj(proj, "TimeMap2_timeToQN"); return w:time_to_qn(t) end
  function r.TimeMap2_QNToTime(proj, qn) need_proj(proj, "TimeMap2_QNToTime"); return w:qn_to_time(qn) end

  -- project and device
  function r.GetSetProjectInfo(proj, desc, value, is_set)
    need_proj(proj, "GetSetProjectInfo")
    if is_set then error("GetSetProjectInfo: the scripts must not change project settings") end
    if desc == "PROJECT_SRATE" then return w.srate end
    if desc == "PROJECT_SRATE_USE" then return w.srate_use end
    error("GetSetProjectInfo: parameter not in the stand-in: " .. tostring(desc))
  end
  function r.GetAudioDeviceInfo(attribute)
    if attribute ~= "SRATE" then error("GetAudioDeviceInfo: attribute not in the stand-in: " .. tostring(attribute)) end
    if w.device_srate then return true, tostring(w.device_srate) end
    return false, ""
  end
  function r.GetOS() return w.case.os or "Linux-x86_64" end
  function r.GetAppVersion() return "7.27/linux-x86_64" end
  function r.GetResourcePath() return w.case.resource_path end
  function r.RecursiveCreateDirectory(path, ignored)
    os.execute("mkdir -p " .. shq(path))
    return 1
  end
  function r.file_exists(path)
    local f = io.open(path, "rb")
    if f then f:close(); return true end
    return false
  end
  function r.time_precise() return now() end
  function r.get_action_context()
    return false, w.current_script or "", 0, 0, -1, -1, -1, ""
  end

  -- undo
  function r.Undo_BeginBlock()
    w.undo_depth = w.undo_depth + 1
    if w.undo_depth == 1 then w.undo[#w.undo + 1] = { ops = {}, open = true } end
  end
  function r.Undo_EndBlock(desc, flags)
    assert(type(desc) == "string" and type(flags) == "number", "Undo_EndBlock(descchange, extraflags)")
    if w.undo_depth == 0 then error("Undo_EndBlock without Undo_BeginBlock") end
    w.undo_depth = w.undo_depth - 1
    if w.undo_depth == 0 then
      local blk = w.undo[#w.undo]
      blk.desc, blk.flags, blk.open = desc, flags, false
    end
  end

  -- user interface
  function r.ShowMessageBox(msg, title, typ)
    w.messages[#w.messages + 1] = { msg = msg, title = title, type = typ }
    return 1
  end
  function r.MB(msg, title, typ) return r.ShowMessageBox(msg, title, typ) end
  function r.ShowConsoleMsg(msg) w.console[#w.console + 1] = msg end
  function r.GetUserInputs(title, num, captions, defaults)
    w.inputs_asked[#w.inputs_asked + 1] = { title = title, num = num, captions = captions, defaults = defaults }
    local answer = table.remove(w.inputs, 1)
    if not answer then error("GetUserInputs: the test case has no answer for dialog " .. title) end
    if answer.ok == false then return false, "" end
    return true, answer.values
  end

  -- ext state
  function r.GetExtState(section, key)
    local s = w.ext[section]
    return s and s[key] and s[key].value or ""
  end
  function r.SetExtState(section, key, value, persist)
    assert(type(value) == "string", "SetExtState: value must be a string")
    w.ext[section] = w.ext[section] or {}
    w.ext[section][key] = { value = value, persist = persist }
  end
  function r.HasExtState(section, key) return w.ext[section] ~= nil and w.ext[section][key] ~= nil end
  function r.DeleteExtState(section, key, persist) if w.ext[section] then w.ext[section][key] = nil end end

  -- processes and deferred work
  function r.ExecProcess(cmd, timeout)
    assert(type(cmd) == "string" and math.type(timeout) ~= nil, "ExecProcess(cmdline, timeoutmsec)")
    return w:run_command(cmd, timeout)
  end
  function r.defer(fn) assert(type(fn) == "function", "defer: function expected"); w.queue[#w.queue + 1] = fn end
  function r.atexit(fn) w.atexit[#w.atexit + 1] = fn end

  _G.reaper = r

  -- gfx: a window that is never drawn; the tests close it or press Esc.
  local g = w.gfx
  local gx = { w = 0, h = 0, x = 0, y = 0, mouse_cap = 0 }
  function gx.init(name, width, height)
    g.opened, g.closed = true, false
    g.inits[#g.inits + 1] = name
    gx.w, gx.h = width or 400, height or 100
  end
  function gx.quit() g.closed = true end
  function gx.getchar()
    if not g.opened or g.closed then return -1 end
    return table.remove(g.pending_chars, 1) or 0
  end
  function gx.update() g.frames = g.frames + 1 end
  function gx.drawstr(s) g.strings[#g.strings + 1] = s; if #g.strings > 50 then table.remove(g.strings, 1) end end
  function gx.set() end
  function gx.rect() end
  function gx.setfont() end
  function gx.measurestr(s) return #s * 7, 14 end
  _G.gfx = gx
end

---------------------------------------------------------------- running scripts

function W:run_script(path)
  self.current_script = path
  local ok, err = xpcall(dofile, debug.traceback, path)
  if not ok then self.errors[#self.errors + 1] = tostring(err) end
end

local function sleep(s) os.execute("sleep " .. s) end

-- Timed test events: {after = seconds, action = "close_window"|"escape"|"run_script", script = path}
function W:fire_events()
  local t = now() - self.t0
  for _, ev in ipairs(self.events) do
    if not ev.fired and t >= ev.after then
      ev.fired = true
      if ev.action == "close_window" then self.gfx.closed = true
      elseif ev.action == "escape" then self.gfx.pending_chars[#self.gfx.pending_chars + 1] = 27
      elseif ev.action == "run_script" then self:run_script(ev.script)
      else error("unknown event " .. tostring(ev.action)) end
    end
  end
end

function W:drive(max_seconds)
  local deadline = now() + max_seconds
  self.ticks = 0
  while #self.queue > 0 do
    local q = self.queue
    self.queue = {}
    for _, fn in ipairs(q) do
      local ok, err = xpcall(fn, debug.traceback)
      if not ok then self.errors[#self.errors + 1] = tostring(err) end
    end
    self.ticks = self.ticks + 1
    self:fire_events()
    if now() > deadline then self.timed_out = true; break end
    if #self.queue > 0 then sleep(0.03) end
  end
  for _, fn in ipairs(self.atexit) do
    local ok, err = xpcall(fn, debug.traceback)
    if not ok then self.errors[#self.errors + 1] = tostring(err) end
  end
end

---------------------------------------------------------------- report

function W:report()
  local tracks = {}
  for ti, tr in ipairs(self.tracks) do
    local items = {}
    for _, it in ipairs(self:items_of(tr)) do
      local takes = {}
      for _, tk in ipairs(it.takes) do
        local s = tk.source
        takes[#takes + 1] = {
          name = tk.name, startoffs = tk.startoffs, playrate = tk.playrate, vol = tk.vol, pitch = tk.pitch, chanmode = tk.chanmode, pan = tk.pan,
          file = s and s.file or nil, type = s and s.type or nil, source_sr = s and s.sr or nil,
          source_frames = s and s.frames or nil, source_length = s and s.length or nil,
          source_channels = s and s.channels or nil,
        }
      end
      items[#items + 1] = { uid = it.uid, position = it.pos, length = it.len, active = it.active,
                            selected = it.selected, loopsrc = it.loopsrc, takes = takes }
    end
    tracks[#tracks + 1] = { index = ti, name = tr.name, items = items }
  end
  local ext = {}
  for sec, keys in pairs(self.ext) do
    ext[sec] = {}
    for k, v in pairs(keys) do ext[sec][k] = v.value end
  end
  return {
    tracks = tracks, undo = self.undo, ops = self.ops, messages = self.messages,
    console = table.concat(self.console), exec = self.exec, inputs_asked = self.inputs_asked,
    errors = self.errors, extstate = ext, undo_depth = self.undo_depth, refresh_depth = self.refresh_depth,
    gfx = { opened = self.gfx.opened, closed = self.gfx.closed, inits = self.gfx.inits, frames = self.gfx.frames,
            strings = self.gfx.strings },
    timed_out = self.timed_out or false, ticks = self.ticks or 0,
    time_selection = self.sel, stretch_queried = self.stretch_queried or false,
  }
end

return W
