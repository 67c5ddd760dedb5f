"""Writes reaper_scripts/index.xml, the ReaPack index, from the scripts' headers.

    python reaper_scripts/make_index.py          # rewrite index.xml
    python reaper_scripts/make_index.py --check  # exit 1 when index.xml is stale

One package ("Segue") installs every action plus segue_lib.lua into the same
folder (the actions load the library with dofile from their own folder).
The URLs point at BASE_URL, a placeholder GitHub path until the project is
published: change it (and re-run) to serve the scripts from the real repository.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
BASE_URL = "https://github.com/segue-audio/segue/raw/main/reaper_scripts/"
LIBRARY = "segue_lib.lua"
TIME = "2026-11-29T00:00:00Z"
WEBSITE = "https://github.com/segue-audio/segue"


def headers(path: Path) -> dict:
    """@tag values of a script's leading comment block (@about may span indented lines)."""
    tags: dict[str, str] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        body = line[2:]
        m = re.match(r"\s*@(\w+)\s*(.*)$", body)
        if m:
            current = m.group(1).lower()
            tags[current] = m.group(2).strip()
        elif current and body.startswith("   "):
            tags[current] = (tags[current] + "\n" + body.strip()).strip()
        else:
            current = None
    return tags


def actions() -> list[Path]:
    return sorted(p for p in HERE.glob("*.lua") if p.name != LIBRARY)


def rtf(text: str) -> str:
    body = text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
    return "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Arial;}}\\f0\\fs20 " + body.replace("\n\n", "\\par\\par ").replace("\n", " ") + "}"


def build() -> str:
    scripts = actions()
    tags = {p.name: headers(p) for p in scripts}
    missing = sorted(name for name, t in tags.items() if not t.get("version"))
    if missing:
        raise SystemExit(f"no @version line in the header of: {', '.join(missing)}")
    versions = {t["version"] for t in tags.values()}
    if len(versions) != 1:
        raise SystemExit(f"scripts disagree on @version: {versions}")
    version = versions.pop()
    about = ("Segue for REAPER: inpaint the time selection, continue an item, variations as takes, generate "
             "from a prompt, with a resident local engine (segue serve).\n\nActions:\n\n"
             + "\n\n".join(f"{t['description']}: {t['about'].split(chr(10) + chr(10))[0]}" for t in tags.values())
             + "\n\nNeeds the Segue engine installed and running (segue serve). See docs/reaper.md in the Segue repository.")
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<index version="1" name="Segue">',
        '  <category name="Segue">',
        '    <reapack name="Segue.lua" type="script" desc="Segue: generative audio (inpaint, continue, variations, generate)">',
        "      <metadata>",
        f"        <description><![CDATA[{rtf(about)}]]></description>",
        f'        <link rel="website">{escape(WEBSITE)}</link>',
        "      </metadata>",
        f'      <version name="{escape(version)}" author="Segue" time="{TIME}">',
        f"        <changelog><![CDATA[{tags[scripts[0].name].get('changelog', 'First release.')}]]></changelog>",
    ]
    for p in scripts:
        lines.append(f'        <source main="main" file={quoteattr(p.name)}>{escape(BASE_URL + quote(p.name))}</source>')
    lines.append(f'        <source file="{LIBRARY}">{escape(BASE_URL + quote(LIBRARY))}</source>')
    lines += ["      </version>", "    </reapack>", "  </category>", "</index>", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="make_index.py", description="Write reaper_scripts/index.xml, the ReaPack "
                                 "index of the Segue actions, from the scripts' headers.")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 when index.xml is stale")
    args = ap.parse_args(argv)
    target = HERE / "index.xml"
    text = build()
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print("reaper_scripts/index.xml is stale: run python reaper_scripts/make_index.py", file=sys.stderr)
            return 1
        print("reaper_scripts/index.xml is up to date")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(actions())} actions + {LIBRARY})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
