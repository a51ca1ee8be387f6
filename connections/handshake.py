"""What the server writes on a client's audio connection: the pairing token, and why it closes.

On accepting an audio connection the server writes a token: `S2S1` + a random little-endian uint32. A
client that reads it and sends it first thing on its reply connection is paired exactly, whatever else
connects at the same moment. A client that cancels its own echo (listen_and_play.py --full_duplex) sends it
back as `S2S2` + the same uint32: it streams its microphone during the reply, and talking over it interrupts. The value is random (not the conversation number) so that another local
process cannot guess it and take the reply.

When the server refuses or ends a conversation it writes a notice before closing the audio connection:
`S2S0` + a little-endian uint32 length + that many bytes of UTF-8 reason. Classic clients, which never read
their audio connection, simply see it closed.

To a full-duplex client the server also writes control frames there, `S2SC` + a little-endian uint32 code, as the
user talks over a reply: HOLD (stop the reply's sound now, keep what is buffered: the user may be cutting in),
RELEASE (it was a cough: play on from where it stopped) and FLUSH (the reply was cut: drop what is buffered). Reply
audio goes out only a little ahead of playback, so a client that ignores them falls silent within that lead; one that
obeys them stops at once. Control frames may come before a notice: `MessageReader` reads both.

Both sides live here: the server writes with `token`, `send_control` and `send_notice` and checks with `parse`; a
client (listen_and_play.py) reads with `read_token`, then `MessageReader` (or `read_notice`, built on it, once its
connection ends).
"""
from __future__ import annotations

import secrets
import select
import socket
import struct
import time

MAGIC = b"S2S1"
FULL_DUPLEX_MAGIC = b"S2S2"  # the same token, from a client that cancels its echo and may talk over the reply
NOTICE_MAGIC = b"S2S0"
CONTROL_MAGIC = b"S2SC"
HOLD, RELEASE, FLUSH = 1, 2, 3  # control codes
TOKEN_SIZE = len(MAGIC) + 4
MAX_REASON_BYTES = 300


def new_nonce() -> int:
    return secrets.randbits(32)


def token(nonce: int) -> bytes:
    return MAGIC + struct.pack("<I", nonce)


def full_duplex(token_bytes: bytes) -> bytes:
    """The token as a full-duplex client sends it back on its reply connection."""
    return FULL_DUPLEX_MAGIC + token_bytes[len(MAGIC):]


def parse(data: bytes) -> int | None:
    """The nonce in a token (either kind), or None."""
    if len(data) != TOKEN_SIZE or not data.startswith((MAGIC, FULL_DUPLEX_MAGIC)):
        return None
    return struct.unpack("<I", data[len(MAGIC):])[0]


def is_full_duplex(data: bytes) -> bool:
    return data.startswith(FULL_DUPLEX_MAGIC)


def could_be_token(data: bytes) -> bool:
    """Whether `data` (the first bytes of a reply connection) may still become a token."""
    head = data[:len(MAGIC)]
    return (MAGIC.startswith(head) or FULL_DUPLEX_MAGIC.startswith(head)) and len(data) <= TOKEN_SIZE


def notice(reason: str) -> bytes:
    text = reason.encode("utf-8")[:MAX_REASON_BYTES]
    return NOTICE_MAGIC + struct.pack("<I", len(text)) + text


def control(code: int) -> bytes:
    return CONTROL_MAGIC + struct.pack("<I", code)


def send_control(conn: socket.socket, code: int) -> bool:
    """Tell a full-duplex client to hold, release or flush its reply audio; never blocks (False: not sent)."""
    try:
        return conn.send(control(code), socket.MSG_DONTWAIT) == TOKEN_SIZE
    except OSError:
        return False


class MessageReader:
    """The frames a server writes on a client's audio connection after the token, from bytes as they arrive:
    `feed` returns ("control", code) and ("notice", reason) messages, whole ones only (the rest waits)."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, int | str]]:
        self._data += data
        messages: list[tuple[str, int | str]] = []
        while len(self._data) >= TOKEN_SIZE:
            head = bytes(self._data[:len(MAGIC)])
            value = struct.unpack("<I", bytes(self._data[len(MAGIC):TOKEN_SIZE]))[0]
            if head == CONTROL_MAGIC:
                messages.append(("control", value))
                del self._data[:TOKEN_SIZE]
            elif head == NOTICE_MAGIC:
                end = TOKEN_SIZE + min(value, MAX_REASON_BYTES)
                if len(self._data) < end:
                    break
                messages.append(("notice", bytes(self._data[TOKEN_SIZE:end]).decode("utf-8", "replace")))
                del self._data[:end]
            else:  # not a frame of this protocol: nothing after it can be trusted to be aligned
                self._data.clear()
                messages.append(("garbled", head.hex()))
        return messages


def send_notice(conn: socket.socket, reason: str) -> None:
    """Tell a client that reads its audio connection why it ends; never block on a client that does not."""
    try:
        conn.send(notice(reason), socket.MSG_DONTWAIT)
    except OSError:
        pass


class Refused(Exception):
    """The server wrote a close notice instead of a token: the reason is the message."""


def read_token(sock: socket.socket, wait_s: float = 1.0) -> bytes:
    """A client's first read on its audio connection: the token to send first thing on its reply connection (b""
    from a server that writes none: then the server pairs by arrival). A close notice raises Refused."""
    data = bytearray()
    _read_into(sock, data, TOKEN_SIZE, time.monotonic() + wait_s)
    if data.startswith(NOTICE_MAGIC):
        raise Refused(read_notice(sock, bytes(data), wait_s) or "refused")
    return bytes(data) if parse(bytes(data)) is not None else b""


def read_notice(sock: socket.socket, head: bytes = b"", wait_s: float = 0.5) -> str | None:
    """The reason in a close notice on `sock` (its first bytes may already be read into `head`), or None. Control frames
    before it are passed over (a full-duplex client's last ones)."""
    reader = MessageReader()
    deadline = time.monotonic() + wait_s
    data = head
    while True:
        for kind, value in reader.feed(data):
            if kind == "notice":
                return str(value)
            if kind == "garbled":
                return None
        data = _read_some(sock, deadline)
        if not data:
            return None


def _read_some(sock: socket.socket, deadline: float, limit: int = 4096) -> bytes:
    """Up to `limit` bytes of what `sock` has by the deadline; b"" if nothing came, or the connection ended."""
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], remaining)[0]:
            return b""
        try:
            return sock.recv(limit)
        except (socket.timeout, BlockingIOError, InterruptedError):
            continue
        except OSError:
            return b""
    return b""


def _read_into(sock: socket.socket, data: bytearray, size: int, deadline: float) -> bool:
    """Read from `sock` until `data` holds `size` bytes; False if the deadline or the end of the connection comes first."""
    while len(data) < size:
        chunk = _read_some(sock, deadline, size - len(data))
        if not chunk:
            return False
        data.extend(chunk)
    return True
