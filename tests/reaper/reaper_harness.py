"""Python side of the REAPER script tests: write a case, run it under lua5.4, read the JSON report.

A case is a Lua table (written from a Python dict by `lua_literal`) describing
the fake project; tests/reaper/run_case.lua runs one script of reaper_scripts/
against the stand-in REAPER (fake_reaper.lua), drives its defer loop to the end
and reports the project, undo blocks, dialogs and commands it ran.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "reaper_scripts"
HERE = Path(__file__).resolve().parent
LUA = shutil.which("lua5.4") or "lua5.4"

SCRIPT = {
    "inpaint": "Segue - Inpaint time selection.lua",
    "continue": "Segue - Continue item.lua",
    "variations": "Segue - Variations of time selection.lua",
    "generate": "Segue - Generate into time selection.lua",
    "cancel": "Segue - Cancel running request.lua",
    "settings": "Segue - Settings.lua",
    "remove_hit": "Segue - Remove hit in time selection.lua",
}


def lua_literal(v) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "0/0"
    if isinstance(v, (str, Path)):
        s = str(v)
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):03d}" for c in s) + '"'
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua_literal(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def write_wav(path: Path, sr: int, seconds: float, channels: int = 1, bits: int = 16) -> Path:
    """A real PCM WAV (silence) of round(seconds*sr) frames: the stand-in reads its header."""
    frames = int(round(seconds * sr))
    width = bits // 8
    data = bytes(frames * channels * width)
    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * width * channels, width * channels, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def fake_client(tmp: Path) -> Path:
    """An executable `segue` that runs fake_segue.py with this Python."""
    exe = tmp / "bin" / "segue"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'fake_segue.py'} \"$@\"\n")
    exe.chmod(0o755)
    return exe


def calls(log: Path) -> list[list[str]]:
    f = log / "calls.jsonl"
    return [json.loads(line)["argv"] for line in f.read_text().splitlines()] if f.exists() else []


def argv_options(argv: list[str]) -> dict:
    """--key value pairs of a client command line (flags without a value map to True)."""
    out, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--"):
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                out[argv[i][2:]] = argv[i + 1]
                i += 2
                continue
            out[argv[i][2:]] = True
        i += 1
    return out


def run_case(tmp: Path, script: str, project: dict, extstate: dict | None = None, inputs: list | None = None,
             events: list | None = None, env: dict | None = None, max_seconds: float = 60,
             after: list[str] | None = None, timeout: float = 120) -> dict:
    res = tmp / "resource"
    res.mkdir(exist_ok=True)
    # an event's script: an action's name, or a path to a Lua file of the test's own (a user's edit)
    events = [dict(e, script=str(SCRIPTS / SCRIPT[e["script"]])) if e.get("script") in SCRIPT else e
              for e in (events or [])]
    case = {
        "script": str(SCRIPTS / SCRIPT[script]),
        "resource_path": str(res),
        "project": project,
        "extstate": {"Segue": extstate or {}},
        "inputs": inputs or [],
        "events": events,
        "max_seconds": max_seconds,
        "exec_log": str(tmp / "exec.log"),
        "after": [str(SCRIPTS / SCRIPT[s]) for s in (after or [])],
    }
    n = len(list(tmp.glob("case*.lua")))
    case_path, out_path = tmp / f"case{n}.lua", tmp / f"report{n}.json"
    case_path.write_text("return " + lua_literal(case) + "\n")
    proc = subprocess.run([LUA, str(HERE / "run_case.lua"), str(case_path), str(out_path)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"lua failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(out_path.read_text())


def items(report: dict, track: int = 1) -> list[dict]:
    return report["tracks"][track - 1]["items"]
