"""The engine's UDP endpoint: one socket, one receive loop, replies from the same socket.

A plain socket loop rather than python-osc's server classes, because every
datagram (non-OSC bytes included) must get an answer and a bad one must never
stop the loop. python-osc still does the OSC parsing and building.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading

from engine import __version__
from engine.errors import SegueError

from .protocol import Double, ProtocolError, decode, encode, is_loopback, parse

log = logging.getLogger("segue.osc")

MAX_DATAGRAM = 65535


def resident_bytes() -> int:
    """The engine's resident memory (Linux /proc; peak RSS elsewhere)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class OscServer:
    def __init__(self, engine, host: str = "127.0.0.1", port: int = 9137, token: str | None = None):
        if not is_loopback(host) and not token:
            raise SegueError("bad_option", f"binding {host} (not loopback) needs --token SECRET")
        self.engine = engine
        self.token = token or None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.address = self.sock.getsockname()[:2]
        self._send_lock = threading.Lock()
        self._closed = False

    # -- sending ------------------------------------------------------------------

    def send(self, to: tuple[str, int], address: str, args: list, f32: bool = False) -> None:
        if address == "/segue/done" and not f32:   # seconds go as float64, like every time in the protocol
            args = list(args)
            args[2] = Double(args[2])
        data = encode(address, args)
        try:
            with self._send_lock:
                self.sock.sendto(data, to)
        except OSError as e:  # a client that went away must not hurt the engine
            log.debug("reply to %s failed: %s", to, e)

    def replier(self, to: tuple[str, int], f32: bool = False):
        return lambda address, args: self.send(to, address, args, f32)

    # -- receiving ----------------------------------------------------------------

    def serve_forever(self) -> None:
        log.info("listening on %s:%d", *self.address)
        while not self._closed:
            try:
                data, sender = self.sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                if self._closed:
                    return
                continue
            try:
                self.handle(data, sender[:2])
            except Exception:  # never let one datagram stop the loop
                log.exception("unexpected failure handling a datagram from %s", sender)

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def handle(self, data: bytes, sender: tuple[str, int]) -> None:
        try:
            messages = decode(data)
        except ProtocolError as e:
            log.info("from %s: %s", sender, e.message)
            self.send(sender, "/segue/error", ["", e.code, e.message])
            return
        for address, args in messages:
            self.handle_message(address, args, sender)

    def handle_message(self, address: str, args: list, sender: tuple[str, int]) -> None:
        try:
            req = parse(address, args, sender, self.token)
        except ProtocolError as e:
            log.info("refused %s from %s: %s %s", address, sender, e.code, e.message)
            self.send(sender, "/segue/error", [e.request_id, e.code, e.message])
            return
        reply = self.replier(req.reply_to, f32=bool(req.opt("f32")))
        try:
            if req.kind == "ping":
                reply("/segue/pong", [req.id, __version__, self.engine.backend.name])
            elif req.kind == "status":
                st = self.engine.status()
                out = [req.id, st["state"], st["backend"], st["queued"], st["running"]]
                if req.opt("detail"):
                    info = dict(self.engine.backend.info())
                    info.setdefault("rss_bytes", resident_bytes())
                    out.append(json.dumps(info))
                reply("/segue/status", out)
            elif req.kind == "cancel":
                if not self.engine.cancel(req.id):
                    reply("/segue/error", [req.id, "not_found", f"no queued or running request with id {req.id!r}"])
            else:
                self.engine.submit(req, reply)
        except SegueError as e:
            log.info("refused %s %s: %s", req.kind, req.id, e)
            reply("/segue/error", [req.id, e.code, e.message])
