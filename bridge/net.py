"""Host names for the loopback-only rule: `localhost` counts as loopback.

Segue talks to loopback only unless a token is set. A user types `localhost` in the
REAPER settings or on the command line as often as `127.0.0.1`, so a name counts as
loopback when every address it resolves to is a loopback address. The engine's
`segue serve --host` and the clients both use `loopback_address` (one rule).
"""

from __future__ import annotations

import ipaddress
import socket


def _is_loopback_ip(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def loopback_address(host: str) -> str | None:
    """The loopback IP address to use for `host`, or None when `host` is not loopback.

    An IP literal is loopback when `ipaddress` says so. A name (e.g. `localhost`) is
    loopback when it resolves and every address it resolves to is loopback; then the
    first IPv4 address is returned (the engine binds 127.0.0.1 by default), else the
    first IPv6 one. A name that does not resolve is not loopback (returns None).
    Never raises.
    """
    host = (host or "").strip()
    if not host:
        return None
    if _is_loopback_ip(host):
        return host
    try:
        ipaddress.ip_address(host)
        return None  # an IP literal that is not loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    addrs = [info[4][0] for info in infos]
    if not addrs or not all(_is_loopback_ip(a) for a in addrs):
        return None
    v4 = [a for a in addrs if ":" not in a]
    return (v4 or addrs)[0]


def is_loopback_host(host: str) -> bool:
    """True when `host` is a loopback IP or a name resolving only to loopback addresses."""
    return loopback_address(host) is not None


def resolve_host(host: str) -> str:
    """An IP address to send to for `host` (loopback names first, then any resolution).

    Raises ValueError naming the host when it does not resolve.
    """
    lo = loopback_address(host)
    if lo is not None:
        return lo
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as e:
        raise ValueError(f"engine host {host!r} does not resolve to an address") from e
    return infos[0][4][0]
