-- @description Segue: Variations of time selection
-- @author Segue
-- @version 0.2.0
-- @changelog Razor-edit areas on one track go as one request (only the areas regenerated); Remove hit action; a backend per action in Settings; an engine that shuts down or stops answering is reported; `localhost` accepted.
-- @about
--   Like Inpaint, but asks for N (2-8) and lands N variations as takes of one item, so you
--   can flip through them (right-click the item > Take).
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
segue.variations_action()
