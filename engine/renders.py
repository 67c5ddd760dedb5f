"""`segue renders`: see and prune the rendered files, which nothing deletes by itself.

The engine writes every result under a new name (it never overwrites), so renders
pile up while a producer tries things. This lists them (newest first, with sizes)
and deletes the oldest beyond a size or age limit. Only files named as the engine
names its results (`STEM-KIND-ID-TAG-vN.wav`, engine/pipeline.py `output_names`)
and its temporary files (`.NAME.XXXXXXXX.part.wav`, audio_io.write_wav_atomic)
directly in the folders are touched; sub-folders and every other file, a user's own
WAVs in an `--out` folder included, are left alone.

A temporary file is never listed as a render. One older than STALE_TEMPORARY_S (an
hour) was left by a write that was killed (kill -9, a power cut); every prune removes
it, whatever the limits. A younger one may be a write in progress and is not touched.
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
# what the engine writes: a result ...
_RENDER = re.compile(r".+-(inpaint|continue|generate)-[A-Za-z0-9_-]+-[0-9a-f]{6}-v[0-9]+\.wav")
# ... and the temporary file it writes first (`.NAME.XXXXXXXX.part.wav`), renamed to NAME when complete
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.part\.wav")
# seconds after its last change from which a temporary file counts as left behind by a killed write
STALE_TEMPORARY_S = 3600.0


@dataclass
class Render:
    path: Path
    bytes: int
    mtime: float              # seconds since the epoch
    temporary: bool = False   # a stale temporary file (not a render): never shown, removed by every prune


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
    """True for a file name the engine gives a result (never for its temporary files)."""
    return _RENDER.fullmatch(name) is not None


def is_temporary(name: str) -> bool:
    """True for the name of a temporary file the engine writes a result to before renaming it."""
    return _TEMPORARY.fullmatch(name) is not None


def list_renders(folders: list[Path], now: float | None = None) -> list[Render]:
    """Every render directly in `folders`, newest first, then the stale temporary files there
    (`temporary=True`, older than STALE_TEMPORARY_S seconds at `now`, default the current time),
    so that `prune` removes them; `describe` never shows them as renders. Younger temporary files
    (a write may be in progress) and other files (a user's own WAVs) are not listed. A file that
    vanishes while the folder is read is skipped."""
    now = time.time() if now is None else now
    out, stale = [], []
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            render, temporary = is_render(p.name), is_temporary(p.name)
            if not (render or temporary) or p.is_symlink():
                continue
            try:
                st = p.stat()
            except FileNotFoundError:   # a write in progress renamed or removed it
                continue
            if not p.is_file():
                continue
            if render:
                out.append(Render(p, st.st_size, st.st_mtime))
            elif now - st.st_mtime > STALE_TEMPORARY_S:
                stale.append(Render(p, st.st_size, st.st_mtime, temporary=True))
    return (sorted(out, key=lambda r: r.mtime, reverse=True)
            + sorted(stale, key=lambda r: r.mtime, reverse=True))


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def describe(folders: list[Path], files: list[Render], show: int = 20) -> str:
    """The listing `segue renders` prints: the newest `show` renders (size in MB, age), their count
    and total; stale temporary files are not renders and get one line saying a prune removes them."""
    now = time.time()
    temporaries = [r for r in files if r.temporary]
    files = [r for r in files if not r.temporary]
    lines = [f"renders folder: {', '.join(str(f) for f in folders)}"]
    for r in files[:show]:
        lines.append(f"  {r.bytes / 1e6:8.1f} MB  {_age(now - r.mtime):>4} ago  {r.path.name}")
    if len(files) > show:
        lines.append(f"  ... and {len(files) - show} older")
    total = sum(r.bytes for r in files)
    lines.append(f"{len(files)} file(s), {total / 1e6:.1f} MB in total. Prune with: segue renders --max-size 500M "
                 "or --older-than 7d")
    if temporaries:
        lines.append(f"also {len(temporaries)} temporary file(s) left by interrupted writes "
                     f"({sum(r.bytes for r in temporaries) / 1e6:.1f} MB); any prune removes them, e.g. "
                     "segue renders --older-than 7d")
    return "\n".join(lines)


def prune(files: list[Render], max_size: int | None = None, older_than: float | None = None,
          dry_run: bool = False, now: float | None = None) -> tuple[list[Render], int]:
    """Delete the renders beyond the limits: older than `older_than` seconds, and the oldest
    ones once the newest already add up to `max_size` bytes; and every stale temporary file in
    `files` (`temporary=True`, older than STALE_TEMPORARY_S seconds at `now`), whatever the limits.
    Temporary files do not count towards `max_size`. With `dry_run` nothing is deleted. Returns
    (removed or to be removed, bytes freed)."""
    now = time.time() if now is None else now
    removed, kept_bytes = [], 0
    for r in sorted(files, key=lambda r: r.mtime, reverse=True):
        if r.temporary:
            if now - r.mtime > STALE_TEMPORARY_S:   # never a write in progress
                removed.append(r)
            continue
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
