"""The send port: accepts reply connections and attaches each to the conversation it belongs to.

Never blocked by a client: every pending connection is read without blocking, and each has a deadline
for its token, so connections that trickle bytes or send nothing cannot stall the others.
"""
from __future__ import annotations

import logging
import selectors
import time

from connections import handshake
from connections.listening_socket import accept_waiting, bind, peer_closed, start_listening
from connections.pairing import PendingReply, match_classic

logger = logging.getLogger(__name__)

TOKEN_WAIT_S = 0.3  # a reply connection that sends nothing for this long is a classic client's
TOKEN_DEADLINE_S = 1.0  # a token must be complete this long after connecting
PENDING_PER_HOST = 32  # reply connections from one host waiting to be paired; past that the oldest is closed
PENDING_TOTAL = 256
POLL_S = 0.05


class ReplyPairing:
    """The send port's side of the accept loop (connections/socket_server.py runs it): pending reply
    connections, their tokens, and pairing them with conversations."""

    def __init__(self, registry, host="localhost", port=12346) -> None:
        self.registry = registry
        self.sock = bind(host, port)
        self.pending: list[PendingReply] = []
        self._selector: selectors.BaseSelector  # the accept loop's, from start()
        self.order = 0  # the accept loop's current round (connections/pairing.py orders connections by it)
        logger.info("sending audio on %s:%d", host, port)

    def start(self, selector: selectors.BaseSelector) -> None:
        start_listening(self.sock)
        self._selector = selector
        selector.register(self.sock, selectors.EVENT_READ, self)

    def close(self) -> None:
        for reply in list(self.pending):
            self._drop(reply)
        self.sock.close()

    def on_ready(self, key_data) -> None:
        """The selector saw the listening socket (`self`) or a pending connection readable."""
        if key_data is self:
            self.accept_all()
        else:
            self._read(key_data)

    def accept_all(self) -> None:
        for conn, peer in accept_waiting(self.sock, "a reply connection"):
            conn.setblocking(False)
            reply = PendingReply(conn, peer.rsplit(":", 1)[0], time.monotonic(), self.order)
            self._make_room(reply.host)
            self.pending.append(reply)
            self._selector.register(conn, selectors.EVENT_READ, reply)

    def _make_room(self, host: str) -> None:
        same_host = [r for r in self.pending if r.host == host]
        if len(same_host) >= PENDING_PER_HOST or len(self.pending) >= PENDING_TOTAL:
            oldest = same_host[0] if len(same_host) >= PENDING_PER_HOST else self.pending[0]
            logger.warning("too many unpaired reply connections from %s: closing the oldest", oldest.host)
            self._drop(oldest)

    def _read(self, reply: PendingReply) -> None:
        try:
            data = reply.conn.recv(handshake.TOKEN_SIZE - len(reply.data))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left before being paired
            self._drop(reply)
            return
        reply.data += data
        reply.tokenless = False  # a token after all (from a slow network)
        if not handshake.could_be_token(reply.data):
            logger.info("closing a reply connection from %s: it sent data that is not a pairing token", reply.host)
            self._drop(reply)
            return
        nonce = handshake.parse(reply.data)
        if nonce is not None:
            self._forget(reply)
            self.registry.pair_by_token(reply.conn, reply.host, nonce, handshake.is_full_duplex(reply.data))

    def tick(self, now: float) -> None:
        for reply in list(self.pending):
            age = now - reply.accepted
            if reply.data and age > TOKEN_DEADLINE_S:
                logger.info("closing a reply connection from %s: its token did not arrive in time", reply.host)
                self._drop(reply)
            elif not reply.data and not reply.tokenless and age > TOKEN_WAIT_S:
                reply.tokenless = True
        if any(r.tokenless for r in self.pending):
            decision = match_classic(self.pending, self.registry.waiting_sessions(), now)
            for reply, session in decision.pairs:
                self._forget(reply)
                if peer_closed(reply.conn):
                    reply.conn.close()
                    continue
                logger.info("reply connection from %s paired with conversation %d by arrival (no token)",
                            reply.host, session.id)
                session.attach_reply_connection(reply.conn)
            for reply, why in decision.refused_replies:
                logger.info("closing a reply connection from %s: %s", reply.host, why)
                self._drop(reply)
            for session, why in decision.refused_sessions:
                session.close(f"refused: {why}")
        self.registry.expire(now)

    def _forget(self, reply: PendingReply) -> None:
        if reply in self.pending:
            self.pending.remove(reply)
            self._selector.unregister(reply.conn)

    def _drop(self, reply: PendingReply) -> None:
        self._forget(reply)
        reply.conn.close()
