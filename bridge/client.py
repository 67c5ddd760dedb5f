"""A small blocking client for protocol v1, used by the `segue` subcommands and tests.

`EngineClient.call` sends one request and waits for its final reply, and it does
not wait blindly: while a request runs it probes the engine with `/segue/status`
after each quiet spell, so an engine that went away is noticed within a few
seconds (at once on loopback, where the kernel reports the closed port), and a
final reply lost on the way (UDP) is asked for again with `/segue/result id`.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .net import loopback_address, resolve_host
from .protocol import Double, ProtocolError, decode, encode

FINAL = ("/segue/done", "/segue/error", "/segue/pong", "/segue/status")
WORK = ("/segue/inpaint", "/segue/continue", "/segue/generate")
DEFAULT_PORT = 9137
# Codes a `/segue/result` reply carries when the request has no final reply yet.
NOT_FINISHED = ("not_found",)


class NoEngine(Exception):
    """Nothing answered at the engine's address."""


class EngineGone(Exception):
    """The engine answered, then stopped answering (it exited or hangs) before the final reply."""


@dataclass
class Reply:
    address: str
    args: list

    @property
    def kind(self) -> str:
        return self.address.rsplit("/", 1)[-1]


@dataclass
class Outcome:
    final: Reply
    events: list[Reply] = field(default_factory=list)
    recovered: bool = False  # the final reply came from `/segue/result` (the first was lost)

    @property
    def ok(self) -> bool:
        return self.final.address != "/segue/error"


def serve_hint(host: str, port: int) -> str:
    """The command that starts an engine where the client looked for one."""
    cmd = "segue serve"
    if loopback_address(host) is None:
        cmd += f" --host {host} --token SECRET"
    if port != DEFAULT_PORT:
        cmd += f" --port {port}"
    return cmd


class EngineClient:
    """One UDP socket to one engine.

    `host` may be an IP address or a name; names that resolve only to loopback
    (`localhost`) count as loopback. Without a token only loopback is allowed.
    Raises ValueError for a non-loopback host without a token, an unresolvable
    host, or a port outside 1-65535.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None):
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"engine port {port} is outside 1-65535")
        loop = loopback_address(host)
        if loop is None and not token:
            raise ValueError(f"engine host {host} is not loopback: pass --token to talk to a remote engine")
        ip = loop or resolve_host(host)
        self.host, self.port = host, port
        self.addr = (ip, port)
        self.token = token
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        for _ in range(8):
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0) if loop else ("", 0))
            # The kernel may hand us the engine's own port number while no engine holds it yet:
            # a socket connected to itself would read its own request as the reply. Take another.
            if self.sock.getsockname()[1] != port:
                break
            self.sock.close()
        # Connected: the kernel then reports "port unreachable" (ConnectionRefusedError) on
        # loopback at once when nothing listens, instead of a silent wait.
        self.sock.connect(self.addr)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, address: str, args: list) -> None:
        """Send one message. Raises ConnectionRefusedError when the engine's port is known closed."""
        if self.token and "token" not in args[1::2]:
            args = list(args) + ["token", self.token]
        self.sock.send(encode(address, args))

    def receive(self, timeout: float) -> Reply | None:
        """The next reply, or None after `timeout` s. Raises ConnectionRefusedError (see send)."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65535)
        except (socket.timeout, TimeoutError):
            return None
        try:
            (address, args), *_ = decode(data)
        except ProtocolError:
            return None
        return Reply(address, args)

    def call(self, address: str, args: list, timeout: float = 600.0, answer_within: float = 3.0,
             on_event: Callable[[Reply], None] | None = None, probe_every: float = 1.5,
             gone_after: float = 6.0) -> Outcome:
        """Send one request and wait for its final reply.

        `answer_within`: seconds for the engine's first reply (else NoEngine).
        `timeout`: seconds for the whole request (then it is cancelled here).
        `probe_every`: seconds of silence before asking `/segue/status`; when the
        engine neither runs nor queues anything, our final reply was lost on the
        way: ask for it again with `/segue/result id`.
        `gone_after`: seconds without any datagram from the engine (probes
        included) before EngineGone is raised.
        The probes carry their own short id (`probe-` and 12 hex digits), so a
        request id of any length the protocol takes (up to 128 characters) works.
        An error reply with an empty id (the engine could not read a message at
        all) ends the call only before the engine has answered the request:
        after that it can only be about a probe, never the request's reply.
        Raises NoEngine, EngineGone.
        """
        rid = args[0] if args else ""
        probe_id = probe_id_for(rid)
        watch = address in WORK
        start = time.monotonic()
        events: list[Reply] = []
        heard = False
        last_heard = last_probe = start
        asked_result = False
        not_found = 0

        def send_or_gone(addr: str, a: list) -> None:
            try:
                self.send(addr, a)
            except ConnectionRefusedError:
                raise EngineGone(self._gone_text(0)) from None

        try:
            self.send(address, args)
        except ConnectionRefusedError:
            raise NoEngine(self._no_engine_text(0)) from None
        while True:
            now = time.monotonic()
            if not heard and now - start >= answer_within:
                raise NoEngine(self._no_engine_text(answer_within))
            if heard and now - start >= timeout:
                if watch:
                    self._send_quietly("/segue/cancel", [rid])
                return Outcome(Reply("/segue/error", [rid, "timeout", f"no result within {timeout:g} s; cancelled"]),
                               events)
            wait = (answer_within if not heard else timeout) - (now - start)
            if heard and watch:
                if now - last_heard >= gone_after:
                    raise EngineGone(self._gone_text(now - last_heard))
                if now - max(last_heard, last_probe) >= probe_every:
                    last_probe = now
                    send_or_gone("/segue/status", [probe_id])
                wait = min(wait, probe_every / 3)
            try:
                reply = self.receive(max(wait, 0.001))
            except ConnectionRefusedError:
                if not heard:
                    raise NoEngine(self._no_engine_text(0)) from None
                raise EngineGone(self._gone_text(time.monotonic() - last_heard)) from None
            if reply is None:
                continue
            if reply.args and reply.args[0] == probe_id:
                last_heard = time.monotonic()
                a = reply.args
                if reply.address == "/segue/status" and len(a) > 4 and a[3] == 0 and a[4] != rid:
                    # Nothing waits and ours does not run, yet no final reply came: ask again.
                    asked_result = True
                    send_or_gone("/segue/result", [rid])
                continue
            if not reply.args or reply.args[0] != rid or not isinstance(rid, str):
                if not heard and reply.address == "/segue/error" and reply.args and reply.args[0] == "":
                    return Outcome(reply, events)  # the engine could not read the request at all
                continue
            heard = True
            last_heard = time.monotonic()
            if asked_result and reply.address == "/segue/error" and len(reply.args) > 1 \
                    and reply.args[1] in NOT_FINISHED + ("unknown_address",):
                # Not finished as far as the engine knows. Twice in a row while it is idle: it forgot us.
                # (Twice, 1.5 s apart, so a request caught between the queue and the worker is not
                # taken for lost; an engine without /segue/result answers unknown_address.)
                not_found += 1
                asked_result = False
                if not_found >= 2:
                    return Outcome(Reply("/segue/error", [rid, "lost", "the engine finished or dropped this request "
                                                         "but its reply was lost and it cannot send it again "
                                                         "(was it restarted?); send the request again"]), events)
                continue
            events.append(reply)
            if on_event:
                on_event(reply)
            if reply.address in FINAL:
                return Outcome(reply, events, recovered=asked_result)

    def _send_quietly(self, address: str, args: list) -> None:
        try:
            self.send(address, args)
        except OSError:
            pass

    def _no_engine_text(self, waited: float) -> str:
        how = "the port is closed" if waited == 0 else f"within {waited:g} s"
        return (f"no engine answered at {self.host}:{self.port} ({how}); start one with: "
                f"{serve_hint(self.host, self.port)}")

    def _gone_text(self, silent: float) -> str:
        what = "its port closed" if silent < 0.5 else f"no answer for {silent:.0f} s"
        return (f"the engine at {self.host}:{self.port} stopped answering ({what}) before the result came; "
                f"it exited or hangs. Start it again with: {serve_hint(self.host, self.port)}")


def new_id() -> str:
    """A fresh request id: 12 random hex digits."""
    return uuid.uuid4().hex[:12]


def probe_id_for(rid) -> str:
    """The id of the `/segue/status` probes sent while request `rid` runs: `probe-` and 12 random hex
    digits (18 characters, well inside the protocol's 128), never equal to `rid`. It does not grow
    with `rid`: `f"{rid}~probe"` went past 128 characters for ids of 123-128, the engine refused the
    probe with an id-less error and the client took that for the request's reply."""
    while True:
        probe = f"probe-{uuid.uuid4().hex[:12]}"
        if probe != rid:
            return probe


def request_args(rid: str, positional: list, options: dict) -> list:
    """Positional values then key value pairs; floats go as float64 ('d')."""
    out: list = [rid]
    for v in positional:
        out.append(Double(v) if isinstance(v, float) else v)
    for k, v in options.items():
        if v is None:
            continue
        out += [k, Double(v) if isinstance(v, float) else v]
    return out
