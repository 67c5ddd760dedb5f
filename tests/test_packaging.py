"""Segue installs as `segue.engine` and `segue.bridge` (issue 13 point 12): no top-level `engine`/`bridge`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_folders() -> set[str]:
    out = set()
    for top in ("engine", "bridge"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).as_posix().replace("/", ".")
            out.add("segue." + rel)
    return out


def test_pyproject_lists_every_package_folder():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(cfg["packages"]) == package_folders()
    assert cfg["package-dir"] == {"segue.engine": "engine", "segue.bridge": "bridge"}


def test_wheel_holds_only_the_segue_package(tmp_path):
    # A real build of the distribution a user installs (no dependencies, no network for them).
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("segue-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"segue", next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert "segue/engine/cli.py" in names and "segue/bridge/jam/cli.py" in names
    assert "segue/engine/backends/sa3_small/dit.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "segue = segue.engine.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_console_script_runs_from_anywhere(tmp_path):
    exe = Path(sys.executable).with_name("segue")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("segue "), r.stderr
    gone = subprocess.run([sys.executable, "-c", "import engine"], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin"})
    assert gone.returncode != 0 and "No module named 'engine'" in gone.stderr
