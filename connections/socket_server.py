"""The socket server: many clients at once, each its own conversation over two connections.

A client connects to the receive port (its audio in) and then to the send port (the reply out). The two
are paired by the token the server writes on the audio connection (connections/handshake.py), or, for a
classic client that sends none, only when the pairing is certain (connections/pairing.py). Two threads
serve every client's accepts and replies (SocketServer, ReplyDispatcher); each client adds a reader and a
writer thread, which end with its connection.
"""
from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading
import time

from connections import handshake
from connections.client_session import ClientSession
from connections.listening_socket import accept_waiting, bind, start_listening
from connections.reply_acceptor import POLL_S, ReplyPairing
from utils.errors import ConfigError
from utils.metrics import TurnMetrics
from utils.pipeline.base_handler import BaseHandler, put_until_stopped
from utils.pipeline.messages import END

logger = logging.getLogger(__name__)

PAIRING_WAIT_S = 10.0  # a conversation whose reply connection has not come after this is closed
EVICT_QUIET_S = 5.0  # when full, a conversation that has streamed no audio for this long makes room for a new client


class SessionRegistry:
    def __init__(self, max_sessions: int, max_per_host: int | None = None) -> None:
        self.max_sessions = max_sessions
        self.max_per_host = max_per_host or max_sessions
        self._sessions: dict[int, ClientSession] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[ClientSession]:
        with self._lock:
            return list(self._sessions.values())

    def get(self, conversation_id: int) -> ClientSession | None:
        return self._sessions.get(conversation_id)

    def add(self, session: ClientSession) -> str | None:
        """Register a new session; None, or why it is refused. When full, a conversation that streams
        no audio gives up its place: connections that trickle bytes cannot lock real clients out."""
        evicted = None
        with self._lock:
            now = time.monotonic()
            same_host = [s for s in self._sessions.values() if s.host == session.host]
            if len(same_host) >= self.max_per_host:
                rivals = same_host
                refusal = f"{len(same_host)} conversations from {session.host} already (--max_sessions_per_host)"
            elif len(self._sessions) >= self.max_sessions:
                rivals = list(self._sessions.values())
                refusal = f"the server is full: {self.max_sessions} conversations already (--max_sessions)"
            else:
                rivals, refusal = [], None
            if rivals:
                quietest = max(rivals, key=lambda s: s.quiet_for(now))
                if quietest.quiet_for(now) < EVICT_QUIET_S:
                    return refusal
                evicted = self._sessions.pop(quietest.id)
            self._sessions[session.id] = session
        if evicted is not None:
            evicted.close(f"made room for a new client: it streamed no audio for {evicted.quiet_for():.0f} s")
        return None

    def remove(self, session: ClientSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def waiting_sessions(self) -> list[ClientSession]:
        return [s for s in self.sessions() if not s.has_reply_connection and not s.closed]

    def pair_by_token(self, conn: socket.socket, host: str, nonce: int, full_duplex: bool = False) -> None:
        """Attach a reply connection to the session whose token it sent, if that one still waits for it."""
        session = next((s for s in self.sessions() if s.nonce == nonce), None)
        if session is None or session.has_reply_connection or session.closed:
            logger.info("closing a reply connection from %s: its token matches no waiting conversation", host)
            conn.close()
            return
        session.attach_reply_connection(conn, full_duplex)

    def expire(self, now: float) -> None:
        for session in self.waiting_sessions():
            if now - session.created > PAIRING_WAIT_S:
                session.close(f"no reply connection came in {PAIRING_WAIT_S:.0f} s")

    def close_all(self, reason: str) -> None:
        for session in self.sessions():
            session.close(reason)
        for session in self.sessions():
            session.join(1.0)


class SocketServer:
    """One thread accepts on both ports: clients on the receive port (each becomes a ClientSession) and
    their reply connections on the send port. One loop gives both kinds of connection one order, which
    pairing a classic client's connections relies on (connections/pairing.py)."""

    name = "SocketServer"

    def __init__(self, stop_event: threading.Event, queue_out: queue.Queue, registry: SessionRegistry,
                 metrics: TurnMetrics, receiver_config, sender_config, barge_in: bool = False) -> None:
        r, s = receiver_config, sender_config
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.registry = registry
        self.metrics = metrics
        self.chunk_size = r.chunk_size
        self.idle_timeout_s = r.idle_timeout_s
        self.barge_in = barge_in
        # Bound now: a busy port fails at start-up. Clients are accepted once the models are loaded.
        self.sock = bind(r.recv_host, r.recv_port)
        logger.info("receiving audio on %s:%d (at most %d clients at once)", r.recv_host, r.recv_port,
                    registry.max_sessions)
        try:
            self.replies = ReplyPairing(registry, s.send_host, s.send_port)
        except ConfigError:
            self.sock.close()
            raise

    def close(self) -> None:
        """Free both ports without having served (a later part of the start-up failed)."""
        self.sock.close()
        self.replies.close()

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            start_listening(self.sock)
            selector.register(self.sock, selectors.EVENT_READ, self)
            self.replies.start(selector)
            while not self.stop_event.is_set():
                events = selector.select(POLL_S)
                self.replies.order += 1
                # New clients first: a reply connection accepted in this round never predates them
                for key, _ in sorted(events, key=lambda event: event[0].data is not self):
                    if key.data is self:
                        self._accept_all()
                    else:
                        self.replies.on_ready(key.data)
                self.replies.tick(time.monotonic())
        except ConfigError as e:
            logger.error("%s; stopping", e)
            self.stop_event.set()
        finally:
            selector.close()
            self.sock.close()
            self.replies.close()
            self.registry.close_all("server shutting down")
            put_until_stopped(self.queue_out, END, self.stop_event)

    def _accept_all(self) -> None:
        for conn, peer in accept_waiting(self.sock, "a client"):
            conn.setblocking(True)
            self._admit(conn, peer)

    def _admit(self, conn: socket.socket, peer: str) -> None:
        session = ClientSession(conn, peer, self.queue_out, self.metrics, self.chunk_size, self.idle_timeout_s,
                                on_close=self.registry.remove, order=self.replies.order, barge_in=self.barge_in)
        refusal = self.registry.add(session)
        if refusal is not None:
            logger.warning("refusing client %s: %s", peer, refusal)
            handshake.send_notice(conn, f"refused: {refusal}")
            conn.close()
            return
        logger.info("client %s connected (conversation %d, %d active)", peer, session.id, len(self.registry))
        session.start()


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
