"""Where outputs may be written: the user data folder plus folders given with --allow-dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import SegueError


def default_render_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "Segue" / "renders"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Segue" / "renders"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "segue" / "renders"


class OutputRoots:
    """Validates `out` folders: absolute, no '..', and inside one of the allowed roots."""

    def __init__(self, default: Path | None = None, extra: list[str | Path] = ()):
        self.default = Path(default or default_render_dir())
        self.roots = [self._real(self.default)] + [self._real(Path(p)) for p in extra]

    @staticmethod
    def _real(p: Path) -> Path:
        return Path(os.path.realpath(os.path.abspath(os.path.expanduser(str(p)))))

    def resolve(self, out: str | None) -> Path:
        if out is None or out == "":
            try:
                self.default.mkdir(parents=True, exist_ok=True)
            except OSError as e:  # was error internal: NotADirectoryError (e.g. XDG_DATA_HOME naming a file)
                raise SegueError("write_failed", f"cannot create the renders folder {self.default}: {e.strerror}; "
                                 "fix it (XDG_DATA_HOME), or pass --out under a segue serve --allow-dir "
                                 "folder") from e
            return self._real(self.default)
        if "\x00" in out:
            raise SegueError("bad_out", "out folder contains a NUL byte")
        p = Path(out)
        if not p.is_absolute():
            raise SegueError("bad_out", f"out folder {out!r} must be an absolute path")
        if ".." in p.parts:
            raise SegueError("bad_out", f"out folder {out!r} must not contain '..'")
        # realpath follows symlinks, so a link inside a root pointing outside is refused too.
        real = self._real(p)
        if not any(real == r or r in real.parents for r in self.roots):
            allowed = ", ".join(str(r) for r in self.roots)
            raise SegueError("bad_out", f"out folder {out!r} is outside the allowed roots ({allowed}); "
                             "start the engine with --allow-dir to add one")
        try:
            real.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SegueError("write_failed", f"cannot create out folder {out!r}: {e.strerror}") from e
        return real


class SourceDirs:
    """Folders sources must lie under (token mode, `segue serve --source-dir`).

    Checked on the real path (symlinks followed) before anything tells whether the
    file exists, so a client cannot probe the engine's disk outside these folders.
    """

    def __init__(self, folders: list[str | Path]):
        self.folders = [OutputRoots._real(Path(p)) for p in folders]

    def check(self, path: str) -> None:
        if not path or "\x00" in path or not os.path.isabs(path):
            raise SegueError("source_not_allowed", "src must be an absolute path under the engine's --source-dir folders")
        real = OutputRoots._real(Path(path))
        if not any(real == f or f in real.parents for f in self.folders):
            if not self.folders:
                raise SegueError("source_not_allowed", "this engine accepts no source files (it runs with --token "
                                 "and no --source-dir)")
            raise SegueError("source_not_allowed", "src lies outside the folders this engine reads from "
                             f"({', '.join(str(f) for f in self.folders)}); see segue serve --source-dir")
