-- @description Segue: Remove hit in time selection
-- @author Segue
-- @version 0.3.0
-- @changelog Results follow an item moved while the engine worked (a deleted or changed item is reported, with the result's path); new takes copy the volume, pan, pitch and channel mode of the take they replace; takes with stretch markers are refused (glue first); a tempo or meter change inside a continuation or an item is said; the downbeat is the project's own next bar line; Windows folders ending in a backslash are passed whole; paths holding a double quote are refused up front.
-- @about
--   Takes a drum hit out: the short time selection (or razor-edit area) around a hit is
--   filled from the audio around it, without a hit (protocol option hit=remove). Plain
--   Inpaint, on the same selection, replaces the hit with a new one of the same kind.
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
segue.remove_hit_action()
