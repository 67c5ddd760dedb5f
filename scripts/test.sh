#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine (Python 3.11), then run them.
# README's second command and .ci/run both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: liblo-tools (independent OSC peer), lua5.4 (REAPER script tests),
# nodejs (Max for Live JS tests; already present on most machines).
APT_PACKAGES="liblo-tools lua5.4"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

# Debian's python3 has no venv/ensurepip until python3-venv is installed.
if [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# torch pinned before anything can pull it in unpinned. On the CI machines `torch==2.13.0` resolves to
# a CPU wheel kept on disk; PyTorch's own CPU index is not reachable there (pip spends ~2 min retrying
# it), so it is not asked. On stock PyPI for Linux x86_64 this pin is the CUDA build: README.md
# ("Neural backends") tells users how to get the CPU build (--index-url .../whl/cpu) or a CUDA one.
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -e '.[test,neural]'
# stable-audio-tools is a test-only oracle for the sao-small parity tests: no dependencies.
.venv/bin/pip install -q --disable-pip-version-check --no-deps stable-audio-tools==0.0.19 einops
# stable-audio-tools 0.0.20 ships the Stable Audio 3 code: the test-only oracle for the sa3-small parity
# tests. Same import name as 0.0.19, so it goes into its own folder and runs in its own process
# (tests/sa3/oracle.py); its metadata pins Python < 3.11 and torch 2.7, hence --ignore-requires-python.
[ -f .venv/sat-0.0.20/stable_audio_tools/__init__.py ] || .venv/bin/pip install -q --disable-pip-version-check \
    --no-deps --ignore-requires-python --target .venv/sat-0.0.20 stable-audio-tools==0.0.20
.venv/bin/pip install -q --disable-pip-version-check --no-deps einops-exts alias-free-torch==0.0.6

# The real audio/MIDI path for the `segue jam` tests: JACK (dummy driver), PortAudio, python-rtmidi, JACK-Client.
scripts/jack.sh install .venv/bin/python

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
exit $rc
