"""Pairing a client's two connections when several clients connect at once.

On accepting an audio connection the server writes a token on it. A client that reads the token and
sends it first thing on its reply connection is paired exactly; a classic client (which never reads
its audio connection, and sends nothing on its reply connection) is paired by arrival order.
"""
from __future__ import annotations

import select
import socket
import struct

MAGIC = b"S2S1"
TOKEN_SIZE = len(MAGIC) + 4
WAIT_S = 0.3  # how long the server waits for a token before pairing by arrival order


def token(conversation_id: int) -> bytes:
    return MAGIC + struct.pack("<I", conversation_id)


def parse(data: bytes) -> int | None:
    if len(data) != TOKEN_SIZE or not data.startswith(MAGIC):
        return None
    return struct.unpack("<I", data[len(MAGIC):])[0]


def read_token(conn: socket.socket, wait_s: float = WAIT_S) -> int | None:
    """The conversation id a reply connection announces, or None (a classic client, or garbage)."""
    data = b""
    deadline_wait = wait_s
    while len(data) < TOKEN_SIZE:
        readable, _, _ = select.select([conn], [], [], deadline_wait)
        if not readable:
            return None
        try:
            chunk = conn.recv(TOKEN_SIZE - len(data), socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
        deadline_wait = 0.5  # the rest of a token comes right after its start
    return parse(data)
