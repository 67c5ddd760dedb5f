-- @description Segue: Inpaint time selection
-- @author Segue
-- @version 0.2.0
-- @changelog Razor-edit areas on one track go as one request (only the areas regenerated); Remove hit action; a backend per action in Settings; an engine that shuts down or stops answering is reported; `localhost` accepted.
-- @about
--   Regenerates the part of the selected item (or the items on the selected tracks) under
--   the time selection with the running Segue engine. The result lands as a new take of
--   the item, split at the selection edges, or as a new item over the selection
--   (Settings). One undo step reverts it. With razor-edit areas (Alt+drag), several areas
--   on one track go as one request: only the areas are regenerated, the rest stays.
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
segue.inpaint_action()
