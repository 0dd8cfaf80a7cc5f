"""Serving the dashboard with waitress, a production WSGI server (pure Python, threads)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Protocol

from waitress.server import create_server


class Server(Protocol):
    """The part of a waitress server the commands use."""

    def run(self) -> None: ...

    def close(self) -> None: ...


def url_of(host: str, port: int) -> str:
    """``http://HOST:PORT/`` with IPv6 addresses in brackets (``http://[::1]:8050/``)."""
    try:
        is_v6 = ipaddress.ip_address(host.strip("[]")).version == 6
    except ValueError:
        is_v6 = False
    shown = f"[{host.strip('[]')}]" if is_v6 else host
    return f"http://{shown}:{port}/"


def bind(wsgi_app: Any, host: str, port: int, threads: int) -> Server:
    """A waitress server listening on ``host:port`` (port 0: any free port), not yet
    running. Raises OSError when the address cannot be resolved or bound.

    The socket is bound here, before waitress starts its worker threads, so a taken port
    leaves no threads or pipes behind."""
    family, socktype, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    server: Server = create_server(wsgi_app, sockets=[sock], threads=threads)
    return server


def listening_on(server: Any) -> list[tuple[str, int]]:
    """The (host, port) pairs a server from :func:`bind` listens on (port 0 resolved);
    waitress gives one pair, or a list when a name resolves to several addresses."""
    listen = getattr(server, "effective_listen", None)
    if listen:
        return [(str(host), int(port)) for host, port in listen]
    return [(str(server.effective_host), int(server.effective_port))]


__all__ = ["Server", "bind", "listening_on", "url_of"]
