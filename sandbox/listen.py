"""A listening socket whose connections send small responses at once (TCP_NODELAY).

asyncio sets TCP_NODELAY on an accepted connection only when its socket says
``proto == IPPROTO_TCP`` (CPython's ``base_events._set_nodelay``); a socket made with
``socket.socket(AF_INET, SOCK_STREAM)`` says 0, so uvicorn served every response with Nagle
on, and each small answer waited ~44 ms for the client's delayed ACK. Linux also copies
TCP_NODELAY from the listener to the connections it accepts, so it is set on both.
"""

from __future__ import annotations

import socket


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound TCP socket (a free port when `port` is 0) for uvicorn's ``sockets=[...]``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock
