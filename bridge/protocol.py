"""Protocol v1: OSC messages <-> the engine's requests (see docs/protocol.md).

`parse(address, args, sender, token)` turns one OSC message into a `Message`
(ping, status, cancel, result) whose `request` is an `engine.request.Request`
for inpaint, continue and generate, or raises `ProtocolError` with the code the
client will see. Everything a request can get wrong without reading a file is
caught here, before the engine sees it. In token mode the server calls
`authenticate` first, so an unauthenticated message learns nothing else.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from dataclasses import dataclass

from segue.engine.errors import SegueError
from segue.engine.request import Request
from segue.engine.timeline import parse_sig

VERSION = "1"
PREFIX = "/segue/"
MAX_ID = 128
MAX_REGIONS = 64
HITS = ("replace", "remove")

# address -> names and kinds of the positional arguments after the id
POSITIONAL = {
    "/segue/inpaint": (("src", "str"), ("start", "num"), ("end", "num")),
    "/segue/continue": (("src", "str"), ("at", "num"), ("bars", "num")),
    "/segue/generate": (("bars", "num"),),
    "/segue/cancel": (),
    "/segue/ping": (),
    "/segue/status": (),
    "/segue/result": (),
}

# option key -> kind
OPTIONS = {
    "bpm": "num", "sig": "str", "sr": "int", "downbeat": "num", "prompt": "str",
    "seed": "int", "variations": "int", "out": "str", "reply_port": "int",
    "reply_host": "str", "backend": "str", "token": "str", "timeout": "num", "detail": "int",
    "f32": "int", "regions": "str", "hit": "str",
}

MAX_BARS = 64

# Backend options: `NAME.KEY value` goes to backend NAME as Task.options[KEY] when NAME runs the
# request (ignored otherwise), e.g. `sa3-small.window short`. The backend checks its own keys.
BACKEND_OPTION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\.[a-z_][a-z0-9_]{0,39}$")
MAX_BACKEND_OPTIONS = 16


class ProtocolError(SegueError):
    def __init__(self, code: str, message: str, request_id: str = ""):
        super().__init__(code, message)
        self.request_id = request_id


@dataclass
class Message:
    """One parsed OSC message: who to answer and what is asked."""
    kind: str                               # inpaint continue generate cancel ping status result
    id: str
    reply_to: tuple[str, int]
    f32: bool = False                       # replies carry no float64
    detail: bool = False                    # status: add the JSON detail
    request: Request | None = None          # inpaint, continue, generate


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _num(value, what: str, rid: str, code: str = "bad_request") -> float:
    # bool is an int subclass in Python, but OSC T/F are not numbers.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(code, f"{what} must be a number (OSC f, d, i or h), got {_osc_kind(value)}", rid)
    v = float(value)
    if not math.isfinite(v):
        raise ProtocolError(code, f"{what} must be finite, got {value}", rid)
    return v


def _int(value, what: str, rid: str, code: str = "bad_option") -> int:
    v = _num(value, what, rid, code)
    if v != int(v):
        raise ProtocolError(code, f"{what} must be a whole number, got {value}", rid)
    return int(v)


def _str(value, what: str, rid: str, code: str = "bad_request") -> str:
    if not isinstance(value, str):
        raise ProtocolError(code, f"{what} must be a string, got {_osc_kind(value)}", rid)
    return value


def _osc_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (bytes, bytearray)):
        return "a blob"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__


def token_matches(given, token: str) -> bool:
    """Constant-time comparison (hmac.compare_digest), so timing does not reveal the token."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8", "replace"))


def authenticate(address: str, args: list, token: str | None) -> bool:
    """True when no token is set, or the message is a known request carrying `token` correctly.

    Looks only at the option words, so nothing else about the message is judged (or
    answered) before the sender has proved it knows the token.
    """
    if token is None:
        return True
    spec = POSITIONAL.get(address)
    if spec is None:
        return False
    rest = args[1 + len(spec):]
    for key, value in zip(rest[::2], rest[1::2]):
        if key == "token":
            return token_matches(value, token)
    return False


def parse(address: str, args: list, sender: tuple[str, int], token: str | None = None) -> Message:
    """Validate one OSC message. Raises ProtocolError naming what is wrong."""
    if token is not None and not authenticate(address, args, token):
        raise ProtocolError("unauthorized", "missing or wrong token")
    rid = args[0] if args and isinstance(args[0], str) else ""
    rid = rid[:MAX_ID] if len(rid) <= MAX_ID else ""
    if address not in POSITIONAL:
        raise ProtocolError("unknown_address", f"unknown address {address[:80]!r}; known: "
                            + ", ".join(sorted(POSITIONAL)), rid)
    if not args:
        raise ProtocolError("bad_request", f"{address} needs a request id (string) as its first argument")
    if not isinstance(args[0], str) or not args[0]:
        raise ProtocolError("bad_request", f"{address}: the first argument must be a non-empty request id string, "
                            f"got {_osc_kind(args[0])}")
    if len(args[0]) > MAX_ID:
        raise ProtocolError("bad_request", f"request id longer than {MAX_ID} characters")
    rid = args[0]
    spec = POSITIONAL[address]
    fixed = args[1:1 + len(spec)]
    if len(fixed) < len(spec):
        names = " ".join(n for n, _ in spec)
        raise ProtocolError("bad_request", f"{address} needs: id {names} (got {len(args)} arguments)", rid)
    rest = args[1 + len(spec):]
    if len(rest) % 2:
        raise ProtocolError("bad_request", f"{address}: options must come as key value pairs "
                            f"({len(rest)} words after the positional arguments)", rid)

    opts: dict = {}
    for key, value in zip(rest[::2], rest[1::2]):
        if not isinstance(key, str):
            raise ProtocolError("bad_request", f"option key must be a string, got {_osc_kind(key)}", rid)
        if key not in OPTIONS and not BACKEND_OPTION.match(key):
            raise ProtocolError("unknown_option", f"unknown option {key[:40]!r}; known: " + ", ".join(OPTIONS)
                                + ", or BACKEND.KEY for a backend's own option", rid)
        if key in opts:
            raise ProtocolError("bad_request", f"option {key!r} given twice", rid)
        opts[key] = value

    # Reply routing first, so later errors reach the right place.
    reply_host, reply_port = sender
    if "reply_host" in opts:
        reply_host = _str(opts["reply_host"], "reply_host", rid, "bad_option")
        try:
            ipaddress.ip_address(reply_host)
        except ValueError:
            raise ProtocolError("bad_reply_host", f"reply_host {reply_host[:60]!r} is not an IP address", rid)
        if (":" in reply_host) != (":" in sender[0]):
            # the engine answers from the socket the request came in on: one address family
            raise ProtocolError("bad_reply_host", f"reply_host {reply_host} is IPv{6 if ':' in reply_host else 4} "
                                f"but the request came over IPv{6 if ':' in sender[0] else 4} ({sender[0]}); "
                                "name an address of the same family", rid)
        if not is_loopback(reply_host) and reply_host != sender[0]:
            # Never send to a third host: a forged request could aim replies at anyone.
            raise ProtocolError("bad_reply_host", f"reply_host {reply_host} is neither loopback nor the "
                                "sender's own address", rid)
    if "reply_port" in opts:
        reply_port = _int(opts["reply_port"], "reply_port", rid)
        if not 1 <= reply_port <= 65535:
            raise ProtocolError("bad_option", f"reply_port {reply_port} is not a port (1-65535)", rid)
    kind = address[len(PREFIX):]
    checked = _check_options(opts, rid)
    msg = Message(kind=kind, id=rid, reply_to=(reply_host, reply_port), f32=bool(checked.get("f32")),
                  detail=bool(checked.get("detail")))
    if kind in ("inpaint", "continue", "generate"):
        values = {name: (_str(v, name, rid) if k == "str" else _num(v, name, rid)) for (name, k), v in zip(spec, fixed)}
        msg.request = _request(kind, rid, values, checked)
    return msg


def _request(kind: str, rid: str, positional: dict, opts: dict) -> Request:
    req = Request(kind=kind, id=rid, **positional)
    for key in ("bpm", "sig", "downbeat", "seed", "variations", "out", "sr", "prompt", "timeout", "backend",
                "hit"):
        if key in opts:
            setattr(req, key, opts[key])
    if opts.get("out") == "":
        req.out = None
    req.options = {k: v for k, v in opts.items() if k not in OPTIONS}
    _check_positional(req)
    if "regions" in opts or "hit" in opts:
        if kind != "inpaint":
            raise ProtocolError("bad_option", f"regions and hit apply to inpaint only, not {kind}", rid)
    if "regions" in opts:
        req.regions = parse_regions(opts["regions"], req.start, req.end, rid)
    return req


REGION_EDGE_SLACK = 1e-6   # seconds: a region this far past the selection's edge is on the edge (rounding)


def parse_regions(text: str, start: float, end: float, rid: str = "") -> list[tuple[float, float]]:
    """'s1:e1,s2:e2' (seconds) -> [(s1, e1), ...]: each inside [start, end), sorted, not overlapping.

    Raises ProtocolError('bad_option') naming the offending region.
    """
    if not text.strip():
        raise ProtocolError("bad_option", "regions is empty; give s1:e1[,s2:e2...] in seconds", rid)
    items = text.split(",")
    if len(items) > MAX_REGIONS:
        raise ProtocolError("bad_option", f"{len(items)} regions; at most {MAX_REGIONS}", rid)
    out: list[tuple[float, float]] = []
    for item in items:
        s_text, sep, e_text = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            s, e = float(s_text), float(e_text)
        except ValueError:
            raise ProtocolError("bad_option", f"region {item.strip()[:40]!r} is not START:END in seconds "
                                "(e.g. regions 1.5:2.0,3.25:3.5)", rid) from None
        if not (math.isfinite(s) and math.isfinite(e)):
            raise ProtocolError("bad_option", f"region {item.strip()[:40]!r} must be finite", rid)
        if s >= e:
            raise ProtocolError("bad_option", f"region {s:g}:{e:g}: start must be before end", rid)
        if s < start - REGION_EDGE_SLACK or e > end + REGION_EDGE_SLACK:
            raise ProtocolError("bad_option", f"region {s:.10g}:{e:.10g} lies outside the selection "
                                f"{start:.10g}-{end:.10g} s", rid)
        # a region on the selection's edge, printed with fewer digits than the float32 edge was sent
        # with (a locator on the loop brace in Live), lands a hair outside it: it means the edge
        s, e = max(s, start), min(e, end)
        if out and s < out[-1][1]:
            raise ProtocolError("bad_option", f"region {s:g}:{e:g} starts before the previous one ends "
                                f"({out[-1][1]:g}); list regions sorted and not overlapping", rid)
        out.append((s, e))
    return out


def _check_options(raw: dict, rid: str) -> dict:
    out: dict = {}
    backend_opts = {k: v for k, v in raw.items() if k not in OPTIONS}
    if len(backend_opts) > MAX_BACKEND_OPTIONS:
        raise ProtocolError("bad_option", f"{len(backend_opts)} backend options; at most {MAX_BACKEND_OPTIONS}", rid)
    for key, value in backend_opts.items():
        if isinstance(value, str):
            out[key] = value[:1000]
        else:
            v = _num(value, key, rid, "bad_option")
            out[key] = int(v) if isinstance(value, int) else v
    for key, value in raw.items():
        if key in backend_opts:
            continue
        kind = OPTIONS[key]
        if kind == "num":
            out[key] = _num(value, key, rid, "bad_option")
        elif kind == "int":
            out[key] = _int(value, key, rid)
        else:
            out[key] = _str(value, key, rid, "bad_option")
    if "bpm" in out and not 20 <= out["bpm"] <= 400:
        raise ProtocolError("bad_option", f"bpm {out['bpm']:g} is outside 20-400", rid)
    if "sr" in out and not 8000 <= out["sr"] <= 192000:
        raise ProtocolError("bad_option", f"sr {out['sr']} is outside 8000-192000", rid)
    if "variations" in out and not 1 <= out["variations"] <= 8:
        raise ProtocolError("bad_option", f"variations {out['variations']} is outside 1-8", rid)
    if "seed" in out and not 0 <= out["seed"] < 2**31:
        raise ProtocolError("bad_option", f"seed {out['seed']} is outside 0-2147483647", rid)
    if "timeout" in out and not 0 < out["timeout"] <= 86400:
        raise ProtocolError("bad_option", f"timeout {out['timeout']:g} must be between 0 and 86400 seconds", rid)
    if "sig" in out:
        try:
            out["sig"] = parse_sig(out["sig"])
        except ValueError as e:
            raise ProtocolError("bad_option", str(e), rid)
    if "downbeat" in out and abs(out["downbeat"]) > 86400:
        raise ProtocolError("bad_option", "downbeat is more than a day away", rid)
    if "hit" in out and out["hit"] not in HITS:
        raise ProtocolError("bad_option", f"hit {out['hit'][:40]!r} must be replace or remove", rid)
    return out


def _check_positional(req: Request) -> None:
    rid = req.id
    if req.kind == "inpaint":
        if req.start < 0:
            raise ProtocolError("bad_region", f"start {req.start:g} s is negative", rid)
        if req.start >= req.end:
            raise ProtocolError("bad_region", f"start {req.start:g} s must be before end {req.end:g} s", rid)
    if req.kind == "continue" and req.at <= 0:
        raise ProtocolError("bad_region", f"at {req.at:g} s leaves no audio before it to continue", rid)
    if req.kind in ("continue", "generate"):
        if not 0 < req.bars <= MAX_BARS:
            raise ProtocolError("bad_region", f"bars {req.bars:g} must be above 0 and at most {MAX_BARS}", rid)
        if req.bpm is None:
            raise ProtocolError("bad_option", f"{req.kind} needs the option bpm (the project tempo)", rid)


MAX_MESSAGE_CHARS = 1000


def error_args(request_id: str, code: str, message: str) -> list:
    return [request_id, code, message[:MAX_MESSAGE_CHARS]]


class Double(float):
    """A float sent as OSC float64 ('d'): used for times so they keep sample precision."""


def encode(address: str, args: list) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, bool):
            b.add_arg(a)
        elif isinstance(a, Double):
            b.add_arg(float(a), "d")
        elif isinstance(a, float):
            b.add_arg(a, "f")
        elif isinstance(a, int):
            b.add_arg(a, "i" if -2**31 <= a < 2**31 else "h")
        else:
            b.add_arg(str(a), "s")
    return b.build().dgram


def decode(data: bytes) -> list[tuple[str, list]]:
    """Datagram -> [(address, args)] (bundles flattened). Raises ProtocolError('bad_packet')."""
    from pythonosc.osc_packet import OscPacket

    try:
        packet = OscPacket(data)
        return [(m.message.address, list(m.message.params)) for m in packet.messages]
    except Exception as e:  # python-osc raises ParseError, but odd bytes can raise others
        raise ProtocolError("bad_packet", f"datagram of {len(data)} bytes is not OSC ({type(e).__name__})")
