-- Runs one ReaScript against the stand-in REAPER and writes what happened as JSON.
--   lua5.4 tests/reaper/run_case.lua CASE.lua OUT.json
-- CASE.lua returns a table: script, resource_path, project, extstate, inputs,
-- events, max_seconds, exec_log (see fake_reaper.lua and tests/reaper/reaper_harness.py).

local here = arg[0]:match("^(.*[/\\])") or "./"
local W = dofile(here .. "fake_reaper.lua")

local function encode(v, out)
  local t = type(v)
  if v == nil then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    elseif math.type(v) == "integer" then out[#out + 1] = tostring(v)
    else out[#out + 1] = string.format("%.17g", v) end
  elseif t == "string" then
    out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c)
      local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
      return map[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "table" then
    local n = #v
    local is_array = n > 0 or next(v) == nil
    if is_array then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, x in pairs(v) do
        if type(x) ~= "function" then
          if not first then out[#out + 1] = "," end
          first = false
          encode(tostring(k), out)
          out[#out + 1] = ":"
          encode(x, out)
        end
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = '"<' .. t .. '>"'
  end
end

local case = dofile(arg[1])
local world = W.new(case)
world:install()
world:run_script(case.script)
world:drive(case.max_seconds or 60)
for _, s in ipairs(case.after or {}) do world:run_script(s) end

local out = {}
encode(world:report(), out)
local f = assert(io.open(arg[2], "w"))
f:write(table.concat(out))
f:close()
