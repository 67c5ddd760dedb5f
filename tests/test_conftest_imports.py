"""The tests import the code of the checkout they live in, not whichever checkout a shared venv was
installed from (tests/conftest.py, `_import_this_checkout`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_segue_engine_and_bridge_come_from_this_checkout():
    import segue.bridge.protocol
    import segue.engine.cli

    for mod, folder in ((segue.engine.cli, "engine"), (segue.bridge.protocol, "bridge")):
        assert Path(mod.__file__).resolve().is_relative_to(ROOT / folder), mod.__file__


def test_a_subprocess_with_pythonpath_root_imports_this_checkout():
    # how the tests start engines and clients: python -m segue.engine.cli with PYTHONPATH=ROOT
    out = subprocess.run([sys.executable, "-c", "import segue.engine.cli as c, segue.bridge.net as n; "
                          "print(c.__file__); print(n.__file__)"], capture_output=True, text=True, timeout=60,
                         cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout.split()
    assert Path(out[0]).resolve() == (ROOT / "engine" / "cli.py").resolve(), out
    assert Path(out[1]).resolve() == (ROOT / "bridge" / "net.py").resolve(), out
