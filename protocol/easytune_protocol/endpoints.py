"""Endpoint helpers shared by the engine and its clients; no sockets, so no pyzmq needed."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def events_endpoint(events: str, requests: str | None) -> str:
    """`events` (hello's) with a wildcard host (0.0.0.0, ::, *) replaced by the host of the
    `requests` endpoint the client connected to, so an engine bound to every interface can be
    subscribed to from another machine."""
    parts = urlsplit(events)
    if parts.scheme != "tcp" or parts.hostname not in ("0.0.0.0", "::", "*") or not requests:
        return events
    req = urlsplit(requests)
    if req.scheme != "tcp" or not req.hostname:
        return events
    host = req.netloc.rsplit(":", 1)[0] if req.port is not None else req.netloc
    return urlunsplit(("tcp", f"{host}:{parts.port}", "", "", ""))


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// to localhost, 127.0.0.0/8 or ::1."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["events_endpoint", "is_loopback"]
