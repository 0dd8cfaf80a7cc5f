"""Serving the dashboard with waitress, a production WSGI server (pure Python, threads)."""

from __future__ import annotations

import ipaddress
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
    running. Raises OSError when the address cannot be bound, ValueError when the host
    is not an address or name of this machine."""
    server: Server = create_server(
        wsgi_app,
        host=host.strip("[]"),
        port=port,
        threads=threads,
    )
    return server


def listening_on(server: Any) -> list[tuple[str, int]]:
    """The (host, port) pairs a server from :func:`bind` listens on (port 0 resolved);
    waitress gives one pair, or a list when a name resolves to several addresses."""
    listen = getattr(server, "effective_listen", None)
    if listen:
        return [(str(host), int(port)) for host, port in listen]
    return [(str(server.effective_host), int(server.effective_port))]


__all__ = ["Server", "bind", "listening_on", "url_of"]
