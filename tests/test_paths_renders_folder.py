"""A renders folder that cannot be created is a clear `write_failed`, never `internal` (engine/paths.py)."""

from __future__ import annotations

import pytest

from segue.engine.errors import SegueError
from segue.engine.paths import OutputRoots


def test_renders_folder_under_a_file_is_write_failed_naming_the_folder(tmp_path):
    blocker = tmp_path / "data"          # XDG_DATA_HOME pointing at a file, not a folder
    blocker.write_text("not a folder")
    roots = OutputRoots(default=blocker / "segue" / "renders")
    with pytest.raises(SegueError) as e:
        roots.resolve(None)
    assert e.value.code == "write_failed"
    assert str(blocker / "segue" / "renders") in e.value.message and "--allow-dir" in e.value.message


def test_renders_folder_is_made_when_missing(tmp_path):
    folder = tmp_path / "new" / "segue" / "renders"
    assert OutputRoots(default=folder).resolve(None) == folder.resolve() and folder.is_dir()
