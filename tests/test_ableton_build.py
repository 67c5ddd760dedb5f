"""Build ableton_m4l/build/Segue.amxd for real and read it back."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
M4L = ROOT / "ableton_m4l"


def load_build_module():
    spec = importlib.util.spec_from_file_location("segue_m4l_build", M4L / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = load_build_module()
SHIPPED = {"segue_device.js", "segue_core.js", "segue_live.js"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("m4l")
    proc = subprocess.run([sys.executable, str(M4L / "build.py"), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    amxd = Path(proc.stdout.strip())
    assert amxd == out / "Segue.amxd"
    return amxd


def boxes(patcher):
    return {b["box"]["id"]: b["box"] for b in patcher["patcher"]["boxes"]}


def test_container_layout(built):
    data = built.read_bytes()
    assert data[:4] == b"ampf" and struct.unpack_from("<I", data, 4)[0] == 4
    assert data[8:12] == b"aaaa"  # audio effect
    assert data[12:16] == b"meta" and struct.unpack_from("<I", data, 16)[0] == 4 and data[20:24] == b"\0\0\0\0"
    assert data[24:28] == b"ptch"
    n = struct.unpack_from("<I", data, 28)[0]
    assert n == len(data) - 32 and data[-1:] == b"\0"
    embedded = json.loads(data[32:-1].decode("utf-8"))
    assert embedded == json.loads((M4L / "device" / "Segue.maxpat").read_text(encoding="utf-8"))
    dtype, meta, patcher = build.read_amxd(data)
    assert (dtype, meta, patcher) == (b"aaaa", b"\0\0\0\0", embedded)


def test_patcher_references_every_shipped_js_and_all_references_exist(built):
    _, _, patcher = build.read_amxd(built.read_bytes())
    assert set(build.shipped_js()) == SHIPPED
    refs = build.patcher_js_references(patcher)
    assert refs["js_boxes"] == {"segue_device.js"}
    assert refs["dependency_cache"] == SHIPPED
    for name in refs["js_boxes"] | refs["dependency_cache"]:
        assert (M4L / "device" / name).is_file()
        # the JS travels beside the .amxd, byte for byte
        assert (built.parent / name).read_bytes() == (M4L / "device" / name).read_bytes()
    required = set().union(*(build.required_modules(M4L / "device" / n) for n in SHIPPED))
    assert required == {"segue_core.js", "segue_live.js"}
    assert build.check(patcher) == []


def test_check_catches_missing_and_unlisted_js():
    patcher = json.loads((M4L / "device" / "Segue.maxpat").read_text(encoding="utf-8"))
    p = copy.deepcopy(patcher)
    p["patcher"]["dependency_cache"] = [d for d in p["patcher"]["dependency_cache"] if d["name"] != "segue_live.js"]
    assert build.check(p) == ["segue_live.js ships but the patcher's dependency_cache does not name it"]
    p = copy.deepcopy(patcher)
    p["patcher"]["boxes"].append({"box": {"id": "obj-x", "maxclass": "newobj", "text": "js missing_helper.js"}})
    assert build.check(p) == ["the patcher names missing_helper.js, which is not in device/"]
    with pytest.raises(ValueError):
        build.read_amxd(build.amxd_bytes(patcher)[:-10])


def test_patch_wiring(built):
    _, _, patcher = build.read_amxd(built.read_bytes())
    bx = boxes(patcher)
    for line in patcher["patcher"]["lines"]:
        (src, o), (dst, i) = line["patchline"]["source"], line["patchline"]["destination"]
        assert o < bx[src]["numoutlets"] and i < bx[dst]["numinlets"], line
    by_text = {b.get("text"): k for k, b in bx.items()}
    links = {(s[0], d[0]) for s, d in ((l["patchline"]["source"], l["patchline"]["destination"])
                                       for l in patcher["patcher"]["lines"])}
    js = by_text["js segue_device.js"]
    assert (js, by_text["udpsend 127.0.0.1 9137"]) in links
    assert (by_text["udpreceive 9138 @defer 1"], js) in links and (js, by_text["udpreceive 9138 @defer 1"]) in links
    assert (by_text["plugin~ 2"], by_text["plugout~ 2"]) in links  # audio passes through
    assert (by_text["prepend sr"], js) in links and (by_text["dspstate~"], by_text["prepend sr"]) in links
    # every message the UI sends into the js names a function the js defines
    device_js = (M4L / "device" / "segue_device.js").read_text(encoding="utf-8")
    defined = set(re.findall(r"^function (\w+)\(", device_js, re.M))
    into_js = [bx[s[0]] for s, d in ((l["patchline"]["source"], l["patchline"]["destination"])
                                     for l in patcher["patcher"]["lines"]) if d[0] == js]
    words = {b["text"].split()[-1] if b["maxclass"] == "newobj" else b["text"] for b in into_js
             if b["maxclass"] in ("message",) or b.get("text", "").startswith("prepend")}
    assert words == {"continue_clip", "inpaint", "generate", "cancel", "bars", "variations", "seed", "prompt", "sr",
                     "engine_host", "engine_port", "hit", "locator_regions", "backend_inpaint", "backend_continue",
                     "backend_generate"}
    assert words <= defined
    ui = {b.get("text") for b in bx.values() if b["maxclass"] == "live.text"}
    assert ui == {"Continue", "Inpaint", "Generate", "Cancel"}
    nums = {b["varname"]: b["saved_attribute_attributes"]["valueof"] for b in bx.values() if b["maxclass"] == "live.numbox"}
    assert (nums["segue_bars"]["parameter_mmin"], nums["segue_bars"]["parameter_mmax"], nums["segue_bars"]["parameter_initial"]) == (1, 32, [4])
    assert (nums["segue_variations"]["parameter_mmin"], nums["segue_variations"]["parameter_mmax"]) == (1, 4)
    assert (nums["segue_port"]["parameter_mmin"], nums["segue_port"]["parameter_mmax"], nums["segue_port"]["parameter_initial"]) \
        == (1, 65535, [9137])    # the engine's port, settable in the device (saved with the set)
    host = next(b for b in bx.values() if b.get("varname") == "segue_host")
    assert host["maxclass"] == "textedit" and host["text"] == "127.0.0.1"
    # every text field (prompt, host, a backend per action) is saved with the Live set: a blob parameter
    # (Max's parameter_type 3: text, not automatable), each under its own long name
    fields = [b for b in bx.values() if b["maxclass"] == "textedit"]
    assert len(fields) == 5
    names = [b["saved_attribute_attributes"]["valueof"]["parameter_longname"] for b in fields]
    assert all(b.get("parameter_enable") == 1 for b in fields) and len(set(names)) == 5, names
    assert all(b["saved_attribute_attributes"]["valueof"]["parameter_type"] == 3 for b in fields)
    assert host["saved_attribute_attributes"]["valueof"]["parameter_initial"] == ["127.0.0.1"]
    # once loaded (live.thisdevice, after Live restored the parameters), each field is banged so its text
    # reaches the js, and before the js's own init bang: a trigger fires its outlets right to left
    outs = {}
    for l in patcher["patcher"]["lines"]:
        (src, o), (dst, _) = l["patchline"]["source"], l["patchline"]["destination"]
        outs.setdefault(src, []).append((o, dst))
    load = next(dst for o, dst in outs[by_text["live.thisdevice"]])
    assert bx[load]["text"].startswith("t ")
    js_outlet = next(o for o, dst in outs[load] if dst == js)
    banged = {}
    for o, dst in outs[load]:
        for _, d in outs.get(dst, []) if bx[dst].get("text", "").startswith("t ") else [(o, dst)]:
            banged[d] = o
    assert {b["id"] for b in fields} <= set(banged), banged
    assert all(banged[b["id"]] > js_outlet for b in fields)
    assert patcher["patcher"]["openinpresentation"] == 1
    assert all("presentation_rect" in b for b in bx.values() if b["maxclass"] in ("live.text", "live.numbox", "textedit"))
