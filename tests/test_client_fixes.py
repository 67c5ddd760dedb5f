"""The client's status probes never break a request whose id is long (real engine, real UDP on 127.0.0.1).

The probes used to carry the id f"{rid}~probe": for ids of 123-128 characters that is past the
protocol's 128, the engine refused the probe with an error whose id is "", and the client took that
error for the request's final reply (exit 1) while the engine went on and wrote the files.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT, groove, start_engine, stop_engine, write_wav

from segue.bridge.client import EngineClient, probe_id_for, request_args
from segue.bridge.protocol import MAX_ID, decode, encode

PY = sys.executable


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = start_engine(tmp_path_factory.mktemp("client-fixes"))
    yield eng
    stop_engine(eng)


@pytest.fixture(scope="module")
def loop(engine) -> Path:
    # inside the engine's allowed folder, as the demo loop the user tried (8 s at 120 BPM)
    return write_wav(engine.root / "loop 120.wav", groove(8.0, 44100), 44100)


def test_the_probe_id_is_short_and_never_the_request_id():
    for rid in ("a" * MAX_ID, "r1", "a" * 122 + "~probe"):
        probe = probe_id_for(rid)
        assert probe != rid and 0 < len(probe) <= 20


@pytest.mark.parametrize("length", [122, 123, 128])
def test_a_request_id_of_up_to_128_characters_survives_the_probes(engine, loop, length):
    rid = str(length)[-1] * length      # a different id each run: a refused one may still run in the engine
    sent: list[tuple[str, list]] = []
    with EngineClient("127.0.0.1", engine.port) as client:
        real_send = client.send

        def send(address, args):
            sent.append((address, list(args)))
            real_send(address, args)

        client.send = send
        # probe after 50 ms of silence, so the request is surely probed while it runs
        out = client.call("/segue/continue", request_args(rid, [str(loop), 8.0, 16], {"bpm": 120.0, "variations": 4}),
                          timeout=120, probe_every=0.05)
    probes = [args for address, args in sent if address == "/segue/status"]
    assert probes, "the request ended before any probe: the test proves nothing"
    assert all(len(args[0]) <= MAX_ID for args in probes)
    assert out.ok, out.final
    assert out.final.address == "/segue/done" and out.final.args[0] == rid
    paths = [a for a in out.final.args if isinstance(a, str) and a.endswith(".wav")]
    assert len(paths) == 4 and all(Path(p).is_file() for p in paths), out.final.args


def test_cli_continue_with_a_128_character_id_prints_the_files(engine, loop):
    # the new user's command: segue continue <loop.wav> 8 64 --bpm 120 --variations 8 --id a...a (128)
    rid = "c" * 128
    proc = subprocess.run([PY, "-m", "segue.engine.cli", "continue", str(loop), "8", "64", "--bpm", "120",
                           "--variations", "8", "--id", rid, "--port", str(engine.port)],
                          capture_output=True, text=True, timeout=180, cwd=str(ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "longer than 128" not in proc.stderr
    paths = proc.stdout.split()
    assert len(paths) == 8 and all(Path(p).is_file() for p in paths), proc.stdout


def test_an_id_less_error_after_the_request_was_answered_is_not_its_reply():
    """A peer that refuses the probes with an id-less error (as the engine does with a message it cannot
    read) and then finishes: the client waits for the `done`, it does not stop at the refusal."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    refused: list[str] = []

    def serve():
        while True:
            try:
                data, sender = sock.recvfrom(65535)
            except OSError:
                return
            for address, args in decode(data):
                if address == "/segue/continue":
                    rid = args[0]
                    sock.sendto(encode("/segue/accepted", [rid, 0]), sender)
                    threading.Timer(1.0, lambda r=rid, s=sender: sock.sendto(
                        encode("/segue/done", [r, "/tmp/x-v1.wav"]), s)).start()
                elif address == "/segue/status":
                    refused.append(args[0])
                    sock.sendto(encode("/segue/error", ["", "bad_request", "refused"]), sender)

    threading.Thread(target=serve, daemon=True).start()
    try:
        with EngineClient("127.0.0.1", port) as client:
            out = client.call("/segue/continue", request_args("r1", ["/tmp/x.wav", 8.0, 1], {}), timeout=30,
                              probe_every=0.1)
    finally:
        sock.close()
    assert refused, "no probe was sent: the test proves nothing"
    assert out.final.address == "/segue/done" and out.final.args == ["r1", "/tmp/x-v1.wav"], out.final
