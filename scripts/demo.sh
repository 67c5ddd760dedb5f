#!/usr/bin/env bash
# Set up Segue (no model weights needed) and show a real round trip: start the engine on
# the dsp backend, render a short loop, continue it by 4 bars over OSC, print the result.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/segue demo
