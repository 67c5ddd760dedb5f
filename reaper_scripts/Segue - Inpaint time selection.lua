-- @description Segue: Inpaint time selection
-- @author Segue
-- @version 0.1.0
-- @changelog First release.
-- @about
--   Regenerates the part of the selected item (or the items on the selected tracks) under
--   the time selection with the running Segue engine. The result lands as a new take of
--   the item, split at the selection edges, or as a new item over the selection
--   (Settings). One undo step reverts it.
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
