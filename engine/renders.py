"""`segue renders`: see and prune the rendered files, which nothing deletes by itself.

The engine writes every result under a new name (it never overwrites), so renders
pile up while a producer tries things. This lists them (newest first, with sizes)
and deletes the oldest beyond a size or age limit. Only files named as the engine
names its results (`STEM-KIND-ID-TAG-vN.wav`, engine/pipeline.py `output_names`)
and its leftover temporary files (`.NAME.XXXXXXXX.part.wav`, audio_io.write_wav_atomic)
directly in the folders are touched; sub-folders and every other file, a user's own
WAVs in an `--out` folder included, are left alone.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import default_render_dir

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12}
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# what the engine writes: a result, or the temporary file an interrupted write left behind
_RENDER = re.compile(r"(.+-(inpaint|continue|generate)-[A-Za-z0-9_-]+-[0-9a-f]{6}-v[0-9]+"
                     r"|\..+\.[0-9a-f]{8}\.part)\.wav")


@dataclass
class Render:
    path: Path
    bytes: int
    mtime: float  # seconds since the epoch


def parse_size(text: str) -> int:
    """'500M' -> 500_000_000 bytes (units B, K, M, G, T; powers of 1000). Raises ValueError."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text or "")
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"size {text!r} is not a size such as 500M or 2G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def parse_age(text: str) -> float:
    """'7d' -> seconds (units s, m, h, d, w). Raises ValueError."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not m:
        raise ValueError(f"age {text!r} is not an age such as 90m, 12h or 7d")
    return float(m.group(1)) * _AGES[m.group(2)]


def render_folders(dirs: list[str] | None) -> list[Path]:
    """The folders to look in: those given, else the engine's default renders folder."""
    return [Path(os.path.expanduser(d)) for d in dirs] if dirs else [default_render_dir()]


def is_render(name: str) -> bool:
    """True for a file name the engine writes (a result or a leftover temporary file)."""
    return _RENDER.fullmatch(name) is not None


def list_renders(folders: list[Path]) -> list[Render]:
    """Every render directly in `folders`, newest first; other files (a user's own WAVs) are not renders."""
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if not is_render(p.name) or not p.is_file() or p.is_symlink():
                continue
            st = p.stat()
            out.append(Render(p, st.st_size, st.st_mtime))
    return sorted(out, key=lambda r: r.mtime, reverse=True)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def describe(folders: list[Path], files: list[Render], show: int = 20) -> str:
    now = time.time()
    lines = [f"renders folder: {', '.join(str(f) for f in folders)}"]
    for r in files[:show]:
        lines.append(f"  {r.bytes / 1e6:8.1f} MB  {_age(now - r.mtime):>4} ago  {r.path.name}")
    if len(files) > show:
        lines.append(f"  ... and {len(files) - show} older")
    total = sum(r.bytes for r in files)
    lines.append(f"{len(files)} file(s), {total / 1e6:.1f} MB in total. Prune with: segue renders --max-size 500M "
                 "or --older-than 7d")
    return "\n".join(lines)


def prune(files: list[Render], max_size: int | None = None, older_than: float | None = None,
          dry_run: bool = False, now: float | None = None) -> tuple[list[Render], int]:
    """Delete the renders beyond the limits: older than `older_than` seconds, and the oldest
    ones once the newest already add up to `max_size` bytes. Returns (removed, bytes freed)."""
    now = time.time() if now is None else now
    removed, kept_bytes = [], 0
    for r in sorted(files, key=lambda r: r.mtime, reverse=True):
        too_old = older_than is not None and now - r.mtime > older_than
        too_big = max_size is not None and kept_bytes + r.bytes > max_size
        if too_old or too_big:
            removed.append(r)
        else:
            kept_bytes += r.bytes
    if not dry_run:
        for r in removed:
            try:
                r.path.unlink()
            except FileNotFoundError:
                pass
    return removed, sum(r.bytes for r in removed)
