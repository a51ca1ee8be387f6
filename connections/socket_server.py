"""The socket server: many clients at once, each its own conversation over two connections.

A client connects to the receive port (its audio in) and then to the send port (the reply out). The
two are paired by a token the client may echo (connections/handshake.py), or else by arrival order,
preferring the same host, so the classic two-port client keeps working. Three threads serve every client's accepts and replies; each client adds a reader and a
writer thread, which end with its connection.
"""
from __future__ import annotations

import logging
import queue
import socket
import threading
import time

from connections import handshake
from connections.client_session import ClientSession
from connections.listening_socket import accept, listen, peer_closed
from utils.base_handler import BaseHandler, put_until_stopped
from utils.messages import END
from utils.metrics import TurnMetrics

logger = logging.getLogger(__name__)

PAIRING_WAIT_S = 10.0  # a reply connection with no audio connection to pair with is closed after this


class SessionRegistry:
    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[int, ClientSession] = {}
        self._unpaired_replies: list[tuple[float, str, socket.socket]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[ClientSession]:
        with self._lock:
            return list(self._sessions.values())

    def get(self, conversation_id: int) -> ClientSession | None:
        return self._sessions.get(conversation_id)

    def add(self, session: ClientSession) -> bool:
        """Register a new session (False when full) and give it a waiting reply connection if there is one."""
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                return False
            self._sessions[session.id] = session
            reply = self._take_unpaired(session.host)
        if reply is not None:
            session.attach_reply_connection(reply)
        return True

    def remove(self, session: ClientSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def pair(self, conn: socket.socket, host: str, conversation_id: int | None = None) -> None:
        """Give a new reply connection to the session it names, or (a classic client) to the oldest
        session still waiting for one, same host first."""
        if conversation_id is not None:
            session = self.get(conversation_id)
            if session is None or session.has_reply_connection or session.closed:
                logger.info("closing a reply connection from %s for unknown conversation %d", host, conversation_id)
                conn.close()
                return
            session.attach_reply_connection(conn)
            return
        if peer_closed(conn):  # a client already gone must not take the place of the next one's reply connection
            conn.close()
            return
        with self._lock:
            waiting = [s for s in self._sessions.values() if not s.has_reply_connection and not s.closed]
            waiting.sort(key=lambda s: (s.host != host, s.created))
            if not waiting:
                self._unpaired_replies.append((time.monotonic(), host, conn))
                return
            session = waiting[0]
        session.attach_reply_connection(conn)

    def _take_unpaired(self, host: str) -> socket.socket | None:
        self._unpaired_replies.sort(key=lambda item: (item[1] != host, item[0]))
        while self._unpaired_replies:
            _, _, conn = self._unpaired_replies.pop(0)
            if not peer_closed(conn):
                return conn
            conn.close()
        return None

    def expire_unpaired(self) -> None:
        now = time.monotonic()
        with self._lock:
            keep = []
            for since, host, conn in self._unpaired_replies:
                if now - since > PAIRING_WAIT_S or peer_closed(conn):
                    logger.info("closing a reply connection from %s that no audio connection came for", host)
                    conn.close()
                else:
                    keep.append((since, host, conn))
            self._unpaired_replies = keep

    def close_all(self, reason: str) -> None:
        for session in self.sessions():
            session.close(reason)
        for session in self.sessions():
            session.join(1.0)
        with self._lock:
            for _, _, conn in self._unpaired_replies:
                conn.close()
            self._unpaired_replies = []


class AudioReceiver:
    """Accepts clients on the receive port; each becomes a ClientSession."""

    name = "AudioReceiver"

    def __init__(self, stop_event: threading.Event, queue_out: queue.Queue, registry: SessionRegistry,
                 metrics: TurnMetrics, host="localhost", port=12345, chunk_size=1024, idle_timeout_s=120.0) -> None:
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.registry = registry
        self.metrics = metrics
        self.chunk_size = chunk_size
        self.idle_timeout_s = idle_timeout_s
        self.sock = listen(host, port)  # bound now so a busy port fails at start-up
        logger.info("receiving audio on %s:%d (at most %d clients at once)", host, port, registry.max_sessions)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                accepted = accept(self.sock)
                if accepted:
                    self._admit(*accepted)
        finally:
            self.sock.close()
            self.registry.close_all("server shutting down")
            put_until_stopped(self.queue_out, END, self.stop_event)

    def _admit(self, conn: socket.socket, peer: str) -> None:
        session = ClientSession(conn, peer, self.queue_out, self.metrics, self.chunk_size, self.idle_timeout_s,
                                on_close=self.registry.remove)
        if not self.registry.add(session):
            logger.warning("refusing client %s: %d conversations already (--max_sessions)", peer, self.registry.max_sessions)
            conn.close()
            return
        logger.info("client %s connected (conversation %d, %d active)", peer, session.id, len(self.registry))
        session.start()


class ReplyAcceptor:
    """Accepts reply connections on the send port and pairs each with a client's audio connection."""

    name = "ReplyAcceptor"

    def __init__(self, stop_event: threading.Event, registry: SessionRegistry, host="localhost", port=12346) -> None:
        self.stop_event = stop_event
        self.registry = registry
        self.sock = listen(host, port)
        logger.info("sending audio on %s:%d", host, port)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                accepted = accept(self.sock)
                if accepted:
                    conn, peer = accepted
                    self.registry.pair(conn, peer.rsplit(":", 1)[0], handshake.read_token(conn))
                self.registry.expire_unpaired()
        finally:
            self.sock.close()


class ReplyDispatcher(BaseHandler):
    """Routes each block of reply audio to its client's outbox. The handler loop drops audio of ended
    conversations and survives a failure on one block."""

    def setup(self, registry: SessionRegistry) -> None:
        self.registry = registry

    def process(self, item):
        session = self.registry.get(item.turn.conversation.id)
        if session is not None and not session.closed:
            session.send(item)
        yield from ()
