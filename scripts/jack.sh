#!/usr/bin/env bash
# The real audio/MIDI path for the `segue jam` tests (see docs/live.md and ../shared/reference/live.md).
#   scripts/jack.sh install [PYTHON]   Debian jackd2 + libportaudio2, pip sounddevice mido python-rtmidi JACK-Client
#   scripts/jack.sh start NAME         a named JACK server on the dummy driver, sync mode, 48 kHz, 256 frames
#   scripts/jack.sh stop NAME
# The tests start and stop their own named server (tests/live/harness.py JackServer); start/stop are for
# trying `segue jam` by hand on a machine without a sound card. Stop every PortAudio user before the server.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-install}"
case "$cmd" in
install)
    PY="${2:-.venv/bin/python}"
    missing=""
    for p in jackd2 libportaudio2; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        # jackd2's postinst asks whether to enable realtime limits: answer no, non-interactively.
        echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
    fi
    # JACK-Client is the test harness only; the jam itself needs sounddevice, mido, python-rtmidi (extra `live`).
    "$PY" -m pip install -q --disable-pip-version-check sounddevice mido python-rtmidi JACK-Client
    # Ableton Link (GPL) for tests/test_jam_link.py only; users opt in with the `link` extra.
    "$PY" -m pip install -q --disable-pip-version-check "LinkPython-extern>=1.3" || \
        echo "LinkPython-extern not installable here: the Link test will be skipped" >&2
    ;;
start)
    name="${2:?server name}"
    nohup jackd -n "$name" -S -d dummy -r 48000 -p 256 >"/tmp/jackd-$name.log" 2>&1 &
    echo $! >"/tmp/jackd-$name.pid"
    jack_wait -s "$name" -w -t 10 >/dev/null
    echo "JACK server $name up; export JACK_DEFAULT_SERVER=$name MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK"
    ;;
stop)
    name="${2:?server name}"
    pidfile="/tmp/jackd-$name.pid"
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    ;;
*)
    echo "usage: scripts/jack.sh install [PYTHON] | start NAME | stop NAME" >&2
    exit 2
    ;;
esac
