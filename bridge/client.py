"""A small blocking client for protocol v1, used by the `segue` subcommands and tests."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .protocol import Double, ProtocolError, decode, encode, is_loopback

FINAL = ("/segue/done", "/segue/error", "/segue/pong", "/segue/status")


class NoEngine(Exception):
    """Nothing answered at the engine's address."""


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

    @property
    def ok(self) -> bool:
        return self.final.address != "/segue/error"


class EngineClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 9137, token: str | None = None):
        # Validate before anything is sent: without a token we talk to loopback only.
        if not is_loopback(host) and not token:
            raise ValueError(f"engine host {host} is not loopback: pass --token to talk to a remote engine")
        self.addr = (host, port)
        self.token = token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0) if is_loopback(host)
                       else ("", 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, address: str, args: list) -> None:
        if self.token and "token" not in args[1::2]:
            args = list(args) + ["token", self.token]
        self.sock.sendto(encode(address, args), self.addr)

    def receive(self, timeout: float) -> Reply | None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(65535)
        except (socket.timeout, TimeoutError):
            return None
        try:
            (address, args), *_ = decode(data)
        except ProtocolError:
            return None
        return Reply(address, args)

    def call(self, address: str, args: list, timeout: float = 600.0, answer_within: float = 3.0,
             on_event: Callable[[Reply], None] | None = None) -> Outcome:
        """Send one request and wait for its final reply.

        `answer_within`: seconds for the engine's first reply (else NoEngine).
        `timeout`: seconds for the whole request (then it is cancelled here).
        """
        rid = args[0] if args else ""
        self.send(address, args)
        start = time.monotonic()
        events: list[Reply] = []
        heard = False
        while True:
            limit = (answer_within if not heard else timeout) - (time.monotonic() - start)
            if limit <= 0:
                if not heard:
                    raise NoEngine(f"no engine answered at {self.addr[0]}:{self.addr[1]} "
                                   f"within {answer_within:g} s (start it with: segue serve)")
                if address in ("/segue/inpaint", "/segue/continue", "/segue/generate"):
                    self.send("/segue/cancel", [rid])
                return Outcome(Reply("/segue/error", [rid, "timeout", f"no result within {timeout:g} s; cancelled"]),
                               events)
            reply = self.receive(limit)
            if reply is None or not reply.args or reply.args[0] != rid or not isinstance(rid, str):
                if reply is not None and reply.address == "/segue/error" and reply.args and reply.args[0] == "":
                    return Outcome(reply, events)  # the engine could not read the request at all
                continue
            heard = True
            events.append(reply)
            if on_event:
                on_event(reply)
            if reply.address in FINAL:
                return Outcome(reply, events)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


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
