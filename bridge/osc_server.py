"""The engine's UDP endpoint: one socket, one receive loop, replies from the same socket.

A plain socket loop rather than python-osc's server classes, because every
datagram (non-OSC bytes included) must get an answer and a bad one must never
stop the loop. python-osc still does the OSC parsing and building.

Token mode (a non-loopback bind): a datagram is judged by its token before
anything else; an unauthenticated one gets at most one small `unauthorized`
reply (and those replies are rate-limited), so a forged sender address cannot
turn the engine into an amplifier. A bundle holds at most MAX_BUNDLE messages.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time

from segue.engine import __version__
from segue.engine.errors import SegueError

from .net import loopback_address, resolve_host
from .protocol import MAX_MESSAGE_CHARS, Double, ProtocolError, authenticate, decode, encode, parse

log = logging.getLogger("segue.osc")

MAX_DATAGRAM = 65535
MAX_REPLY = 65000            # one UDP datagram, with room to spare
MAX_BUNDLE = 16              # messages in one datagram
RECEIVE_BUFFER_BYTES = 4 << 20   # asked of the kernel (Linux caps it at net.core.rmem_max)
UNAUTH_REPLIES_PER_SECOND = 10


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


def printable(value):
    """Strings as OSC can carry them: valid UTF-8 (a path with a stray byte gets U+FFFD), no NUL."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")
    return value


class OscServer:
    def __init__(self, engine, host: str = "127.0.0.1", port: int = 9137, token: str | None = None):
        bind = loopback_address(host)            # `localhost` is loopback, as for the clients (bridge/net.py)
        if bind is None:
            try:
                bind = resolve_host(host)
            except ValueError as e:
                raise SegueError("bad_option", f"cannot bind {host}: {e}") from e
            if not token:
                raise SegueError("bad_option", f"binding {host} (not loopback) needs --token SECRET")
        self.engine = engine
        self.token = token or None
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:   # room for a burst of requests (the default ~200 KB dropped 424 of 1000 back-to-back pings)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        except OSError:
            pass
        self.sock.bind((bind, port))
        self.sock.settimeout(0.25)       # the loop notices stop() within this
        self.address = self.sock.getsockname()[:2]
        self._send_lock = threading.Lock()
        self._running = True
        self._closed = False
        self._unauth_window = 0.0
        self._unauth_count = 0

    # -- sending ------------------------------------------------------------------

    def send(self, to: tuple[str, int], address: str, args: list, f32: bool = False) -> None:
        """Send one reply; never raises (a reply that cannot go is logged and dropped)."""
        try:
            args = [printable(a) for a in args]
            if address == "/segue/error" and len(args) >= 3:
                args[2] = args[2][:MAX_MESSAGE_CHARS]
            if address == "/segue/done" and not f32:  # seconds go as float64, like every time in the protocol
                args[2] = Double(args[2])
            data = encode(address, args)
            if len(data) > MAX_REPLY:   # only a done with very long paths can get here
                data = encode("/segue/error", [args[0] if args else "", "internal",
                                               f"the reply ({len(data)} bytes) does not fit one datagram"])
            with self._send_lock:
                self.sock.sendto(data, to)
        except Exception as e:  # a client that went away, or a value OSC cannot carry
            log.warning("reply %s to %s failed: %s", address, to, e)

    def replier(self, to: tuple[str, int], f32: bool = False):
        """The engine's reply(kind, args) callback for one request."""
        return lambda kind, args: self.send(to, f"/segue/{kind}", args, f32)

    # -- receiving ----------------------------------------------------------------

    def serve_forever(self) -> None:
        """Receive until stop(); the socket stays open so the engine can still send final replies."""
        log.info("listening on %s:%d", *self.address)
        while self._running:
            try:
                data, sender = self.sock.recvfrom(MAX_DATAGRAM)
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if not self._running or self._closed:
                    return
                continue
            try:   # handled even when stop() came meanwhile: engine.stop() still answers what it accepts
                self.handle(data, sender[:2])
            except Exception:  # never let one datagram stop the loop
                log.exception("unexpected failure handling a datagram from %s", sender)

    def drain(self, limit: int = 1000) -> None:
        """Answer the datagrams already waiting in the socket (after the engine stopped, requests among
        them are refused with `busy` "engine shutting down"), so none goes unanswered at shutdown."""
        try:
            self.sock.setblocking(False)
        except OSError:
            return
        for _ in range(limit):
            try:
                data, sender = self.sock.recvfrom(MAX_DATAGRAM)
            except OSError:   # BlockingIOError: nothing left
                return
            try:
                self.handle(data, sender[:2])
            except Exception:
                log.exception("unexpected failure handling a datagram from %s", sender)

    def stop(self) -> None:
        """Stop receiving (safe from a signal handler); close() later, after the final replies."""
        self._running = False

    def close(self) -> None:
        self._running = False
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _refuse_unauthenticated(self, sender: tuple[str, int]) -> None:
        now = time.monotonic()
        if now - self._unauth_window >= 1.0:
            self._unauth_window, self._unauth_count = now, 0
        if self._unauth_count >= UNAUTH_REPLIES_PER_SECOND:
            return
        self._unauth_count += 1
        self.send(sender, "/segue/error", ["", "unauthorized", "missing or wrong token"])

    def handle(self, data: bytes, sender: tuple[str, int]) -> None:
        try:
            messages = decode(data)
        except ProtocolError as e:
            log.info("from %s: %s", sender, e.message)
            if self.token is not None:
                self._refuse_unauthenticated(sender)
            else:
                self.send(sender, "/segue/error", ["", e.code, e.message])
            return
        if self.token is not None and not all(authenticate(a, args, self.token) for a, args in messages):
            log.info("unauthenticated datagram from %s (%d messages)", sender, len(messages))
            self._refuse_unauthenticated(sender)
            return
        if not messages:   # an empty bundle: no message to answer, so say so (every datagram gets a reply)
            self.send(sender, "/segue/error", ["", "bad_packet", "an empty bundle: no message in it"])
            return
        if len(messages) > MAX_BUNDLE:
            self.send(sender, "/segue/error", ["", "bad_packet", f"a bundle of {len(messages)} messages; "
                                               f"at most {MAX_BUNDLE} per datagram"])
            return
        for address, args in messages:
            self.handle_message(address, args, sender)

    def handle_message(self, address: str, args: list, sender: tuple[str, int]) -> None:
        try:
            msg = parse(address, args, sender, self.token)
        except ProtocolError as e:
            log.info("refused %s from %s: %s %s", address, sender, e.code, e.message)
            self.send(sender, "/segue/error", [e.request_id, e.code, e.message])
            return
        reply = self.replier(msg.reply_to, f32=msg.f32)
        try:
            if msg.kind == "ping":
                reply("pong", [msg.id, __version__, self.engine.default])
            elif msg.kind == "status":
                st = self.engine.describe()
                out = [msg.id, st["state"], st["backend"], st["queued"], st["running"]]
                if msg.detail:
                    out.append(json.dumps(self.detail(st)))
                reply("status", out)
            elif msg.kind == "cancel":
                if not self.engine.cancel(msg.id):
                    reply("error", [msg.id, "not_found", f"no queued or running request with id {msg.id!r}"])
            elif msg.kind == "result":
                got = self.engine.result(msg.id)
                if got is None:
                    reply("error", [msg.id, "not_found", f"no recent request with id {msg.id!r} "
                                    "(results are kept for an hour, the most recent few thousand)"])
                else:
                    reply(*got)
            else:
                self.engine.submit(msg.request, reply)
        except SegueError as e:
            log.info("refused %s %s: %s", msg.kind, msg.id, e)
            reply("error", [msg.id, e.code, e.message])

    @staticmethod
    def detail(st: dict) -> dict:
        """Status detail: the default backend's facts at the top (as before), every backend under
        `backends`, load failures under `failed`, the limits, and the engine's resident memory."""
        info = dict(st["backends"].get(st["backend"], {}))
        info.update(backends=st["backends"], failed=st["failed"], max_output_seconds=st["max_output_seconds"],
                    max_source_seconds=st["max_source_seconds"])
        info["rss_bytes"] = resident_bytes()
        return info
