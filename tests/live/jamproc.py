"""A real `segue jam` process (JACK audio and MIDI APIs) and an OSC socket to talk to it (tests and bench)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jam:
    """A real `segue jam` process and an OSC socket to talk to it."""

    def __init__(self, tmp: Path, engine_port: int, *args: str, stdin=None):
        self.osc_port = free_port()
        self.log = tmp / f"jam-{self.osc_port}.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "segue.engine.cli", "jam", "--audio-api", "jack",
                                      "--midi-api", "UNIX_JACK", "--port", str(engine_port), "--osc-port",
                                      str(self.osc_port), "--status", "off", *args],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                     stdin=stdin)
        # (a later "--status on" wins over the "off" above: argparse keeps the last value)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)

    def send(self, address: str, *args) -> tuple[str, list]:
        from segue.bridge.protocol import decode, encode

        self.sock.sendto(encode(address, list(args)), ("127.0.0.1", self.osc_port))
        data, _ = self.sock.recvfrom(65535)
        return decode(data)[0]

    def status(self) -> dict:
        address, args = self.send("/jam/status")
        assert address == "/jam/status"
        return json.loads(args[0])

    def wait_ready(self, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"segue jam exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                return self.status()
            except (socket.timeout, TimeoutError, ConnectionRefusedError):
                time.sleep(0.2)
        raise TimeoutError(f"segue jam did not answer: {self.log.read_text()}")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9
        finally:
            self.sock.close()
