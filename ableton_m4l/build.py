#!/usr/bin/env python3
"""Build the Segue Max for Live device: ableton_m4l/build/Segue.amxd.

The .amxd is the unfrozen Max for Live container around the patcher JSON
(little-endian): b"ampf" + u32 4 + b"aaaa" (audio effect), b"meta" + u32 4 +
4 zero bytes, b"ptch" + u32 N + N bytes of patcher JSON ending in a NUL.

The device's JavaScript is not embedded (only Max's Freeze does that, in an
undocumented format): the JS files are copied beside the .amxd, and Max finds
them there. Keep them together, or open the device in Max and Freeze it
(docs/ableton.md). Before writing, the build checks that the patcher names
every shipped JS file and that every JS file it names (in [js] boxes, the
dependency cache or require() calls) exists.

Usage: python ableton_m4l/build.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEVICE_DIR = HERE / "device"
PATCHER = DEVICE_DIR / "Segue.maxpat"
DEVICE_TYPE = b"aaaa"  # audio effect ("mmmm" MIDI effect, "iiii" instrument)

_REQUIRE = re.compile(r"""require\(\s*["'](?:\./)?([A-Za-z0-9_.-]+?)(?:\.js)?["']\s*\)""")


def shipped_js() -> list[str]:
    return sorted(p.name for p in DEVICE_DIR.glob("*.js"))


def patcher_js_references(patcher: dict) -> dict[str, set[str]]:
    """JS files the patcher names: {'js_boxes': {...}, 'dependency_cache': {...}}."""
    p = patcher["patcher"]
    boxes = set()
    for b in p.get("boxes", []):
        text = b["box"].get("text", "")
        words = text.split()
        if b["box"].get("maxclass") == "newobj" and len(words) >= 2 and words[0] in ("js", "v8", "jsui"):
            boxes.add(words[1] if words[1].endswith(".js") else words[1] + ".js")
    deps = {d["name"] for d in p.get("dependency_cache", []) if d.get("name", "").endswith(".js")}
    return {"js_boxes": boxes, "dependency_cache": deps}


def required_modules(js_path: Path) -> set[str]:
    return {m + ".js" for m in _REQUIRE.findall(js_path.read_text(encoding="utf-8"))}


def check(patcher: dict) -> list[str]:
    """Problems that would make the device fail to load its JavaScript."""
    problems = []
    refs = patcher_js_references(patcher)
    named = refs["js_boxes"] | refs["dependency_cache"]
    ships = set(shipped_js())
    if not refs["js_boxes"]:
        problems.append("no [js] box in the patcher")
    for name in sorted(ships - refs["dependency_cache"]):
        problems.append(f"{name} ships but the patcher's dependency_cache does not name it")
    for name in sorted(named - ships):
        problems.append(f"the patcher names {name}, which is not in {DEVICE_DIR.name}/")
    for name in sorted(ships):
        for mod in sorted(required_modules(DEVICE_DIR / name) - ships):
            problems.append(f"{name} requires {mod}, which is not in {DEVICE_DIR.name}/")
    return problems


def amxd_bytes(patcher: dict, device_type: bytes = DEVICE_TYPE) -> bytes:
    body = json.dumps(patcher, indent=1, ensure_ascii=False).encode("utf-8") + b"\x00"
    return (b"ampf" + struct.pack("<I", 4) + device_type
            + b"meta" + struct.pack("<I", 4) + b"\x00\x00\x00\x00"
            + b"ptch" + struct.pack("<I", len(body)) + body)


def read_amxd(data: bytes) -> tuple[bytes, bytes, dict]:
    """(device type, meta payload, patcher) of an unfrozen .amxd; raises ValueError."""
    if data[:4] != b"ampf" or struct.unpack_from("<I", data, 4)[0] != 4:
        raise ValueError("not an ampf container")
    dtype = data[8:12]
    if data[12:16] != b"meta":
        raise ValueError("no meta chunk")
    mlen = struct.unpack_from("<I", data, 16)[0]
    meta = data[20:20 + mlen]
    off = 20 + mlen
    if data[off:off + 4] != b"ptch":
        raise ValueError("no ptch chunk")
    plen = struct.unpack_from("<I", data, off + 4)[0]
    body = data[off + 8:off + 8 + plen]
    if len(body) != plen or off + 8 + plen != len(data):
        raise ValueError("ptch length does not match the file")
    if not body.endswith(b"\x00"):
        raise ValueError("patcher JSON is not NUL-terminated")
    return dtype, meta, json.loads(body[:-1].decode("utf-8"))


def build(out_dir: Path) -> Path:
    patcher = json.loads(PATCHER.read_text(encoding="utf-8"))
    problems = check(patcher)
    if problems:
        raise SystemExit("build.py: " + "; ".join(problems))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "Segue.amxd"
    tmp = target.with_suffix(".amxd.tmp")
    tmp.write_bytes(amxd_bytes(patcher))
    tmp.replace(target)
    for name in shipped_js():
        shutil.copyfile(DEVICE_DIR / name, out_dir / name)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "build", help="output folder (default ableton_m4l/build)")
    args = ap.parse_args(argv)
    target = build(args.out)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
