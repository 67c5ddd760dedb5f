"""The OSC server's edges, over real UDP on 127.0.0.1: `localhost` binds, reply routing by address
family, bursts of requests, an empty bundle."""

from __future__ import annotations

import socket
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

from segue.bridge.client import EngineClient
from segue.bridge.osc_server import OscServer
from segue.bridge.protocol import decode, encode
from segue.engine.engine import Engine
from segue.engine.errors import SegueError
from segue.engine.paths import OutputRoots


@pytest.fixture
def server(tmp_path):
    import threading
    from segue.engine.backends.dsp import DspBackend

    eng = Engine({"dsp": DspBackend()}, OutputRoots(default=tmp_path / "out"))
    eng.start()
    srv = OscServer(eng, "localhost", 0)          # a name, as users type it (README: localhost works)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.stop()
    t.join(5)
    eng.stop()
    srv.close()


def _replies(sock: socket.socket, want: int, within: float) -> list:
    out, deadline = [], time.monotonic() + within
    sock.settimeout(0.2)
    while len(out) < want and time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(65535)
        except (socket.timeout, TimeoutError):
            continue
        out.extend(decode(data))
    return out


def test_localhost_binds_loopback_and_a_name_that_does_not_resolve_is_named(server):
    assert server.address[0] == "127.0.0.1"
    with EngineClient("localhost", server.address[1]) as c:
        assert c.call("/segue/ping", ["lh"]).final.address == "/segue/pong"
    with pytest.raises(SegueError, match="does not resolve"):
        OscServer(None, "no-such-host.invalid", 0)
    with pytest.raises(SegueError, match="--token"):
        OscServer(None, "192.0.2.1", 0)


def test_reply_host_of_the_other_family_is_refused_before_acceptance(server):
    with EngineClient("127.0.0.1", server.address[1]) as c:
        out = c.call("/segue/ping", ["fam", "reply_host", "::1"])
    assert out.final.address == "/segue/error" and out.final.args[1] == "bad_reply_host", out.final.args
    assert "IPv6" in out.final.args[2] and "IPv4" in out.final.args[2]


def test_a_burst_of_requests_is_answered_whole(server, monkeypatch):
    """1000 pings sent back to back to an engine that takes a millisecond over each datagram (a busy
    machine): the default receive buffer (~200 KB) kept 576 of them from a real `segue serve`."""
    real = server.handle
    monkeypatch.setattr(server, "handle", lambda data, sender: (time.sleep(0.001), real(data, sender)))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    try:
        for i in range(1000):
            s.sendto(encode("/segue/ping", [f"b{i}"]), ("127.0.0.1", server.address[1]))
        got = _replies(s, 1000, within=30)
    finally:
        s.close()
    assert len({args[0] for _, args in got}) == 1000, len(got)


def test_an_empty_bundle_gets_an_answer(server):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        s.sendto(OscBundleBuilder(IMMEDIATELY).build().dgram, ("127.0.0.1", server.address[1]))
        got = _replies(s, 1, within=5)
    finally:
        s.close()
    assert got and got[0][0] == "/segue/error" and got[0][1][1] == "bad_packet", got
