from __future__ import annotations

import errno
import logging
import select
import socket
from typing import Iterator

from utils.errors import ConfigError

logger = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.2  # recv() times out this often so a stop request is seen quickly


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port, or one clear ConfigError (port in use, unknown host). It accepts
    nothing until `start_listening`: the port is taken at start-up (a busy port fails fast), but a client
    that comes while the models load is refused at once instead of talking to a server that cannot answer."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"cannot resolve host '{host}': {e.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use (another server running?)") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def start_listening(sock: socket.socket) -> None:
    """Accept from now on, without blocking (the accept loop waits on a selector)."""
    try:
        sock.listen(socket.SOMAXCONN)  # a burst of clients (or of hostile connections) waits instead of being refused
    except OSError as e:  # another server bound the same port while we loaded
        raise ConfigError(f"cannot listen on port {sock.getsockname()[1]}: {e.strerror}") from None
    sock.setblocking(False)


def accept_waiting(sock: socket.socket, what: str) -> Iterator[tuple[socket.socket, str]]:
    """Every connection waiting on a non-blocking listening socket, with the peer's host."""
    while True:
        try:
            conn, address = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:  # out of file descriptors: the rest wait in the backlog for the next round
            logger.warning("cannot accept %s: %s", what, e.strerror or e)
            return
        yield conn, f"{address[0]}:{address[1]}"


def peer_closed(conn: socket.socket) -> bool:
    """True when the other end has closed a connection it never sends on (our reply connection)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""  # readable and empty: the peer closed
    except OSError:
        return True
