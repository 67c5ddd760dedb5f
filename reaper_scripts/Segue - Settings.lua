-- @description Segue: Settings
-- @author Segue
-- @version 0.2.0
-- @changelog Razor-edit areas on one track go as one request (only the areas regenerated); Remove hit action; a backend per action in Settings; an engine that shuts down or stops answering is reported; `localhost` accepted.
-- @about
--   Engine host (localhost works) and port, the segue program path, a backend per action
--   (inpaint, continue, generate), token, default prompt, landing mode (take or item),
--   engine auto-start, output folder, default bars and variations, seed.
--
--   Needs the Segue engine (`segue serve`); see docs/reaper.md.

-- All the work is in segue_lib.lua, installed next to this script.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local ok, segue = pcall(dofile, dir .. "segue_lib.lua")
if not ok then
  reaper.ShowMessageBox("Cannot load segue_lib.lua next to this script:\n" .. tostring(segue)
    .. "\n\nReinstall the Segue package (Extensions > ReaPack > Synchronize packages).", "Segue", 0)
  return
end
segue.settings_action()
