-- @description Segue: Continue item
-- @author Segue
-- @version 0.2.0
-- @changelog Razor-edit areas on one track go as one request (only the areas regenerated); Remove hit action; a backend per action in Settings; an engine that shuts down or stops answering is reported; `localhost` accepted.
-- @about
--   Continues the selected item by N bars (asked, default 4) at the tempo and time
--   signature at its end. The new item starts exactly where the item ends.
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
segue.continue_action()
