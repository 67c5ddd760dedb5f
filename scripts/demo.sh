#!/usr/bin/env bash
# Set up Segue (no model weights needed) and show a real round trip: start the engine on
# the dsp backend, render a short loop, continue it by 4 bars over OSC, print the result.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's python3 has no venv/ensurepip until python3-venv is installed.
if [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/segue demo
