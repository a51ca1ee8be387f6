"""Sends the reply audio (raw 16 kHz int16) to the client of the active conversation."""
from __future__ import annotations

import logging
import queue
import socket
import threading

from connections.conversations import ConversationBoard
from connections.listening_socket import ACCEPT_POLL_S, accept, listen, peer_closed
from utils.messages import END
from utils.metrics import TurnMetrics

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0  # a client that reads nothing for this long is dropped instead of blocking us


class SocketSender:
    name = "SocketSender"

    def __init__(self, stop_event: threading.Event, queue_in: queue.Queue, board: ConversationBoard,
                 metrics: TurnMetrics, host="localhost", port=12346) -> None:
        self.stop_event = stop_event
        self.queue_in = queue_in
        self.board = board
        self.metrics = metrics
        self.sock = listen(host, port)
        logger.info("sending audio on %s:%d", host, port)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                accepted = accept(self.sock)
                if accepted and self._serve(*accepted):
                    break
        finally:
            self.sock.close()

    def _serve(self, conn: socket.socket, peer: str) -> bool:
        """Send to one client until its conversation ends; True when END arrived."""
        conversation = None
        while conversation is None and not self.stop_event.is_set():
            if peer_closed(conn):  # a client that left before its conversation started (or ended)
                conn.close()
                return False
            conversation = self.board.wait_for_active(ACCEPT_POLL_S)
        conn.settimeout(SEND_TIMEOUT_S)
        try:
            while not self.stop_event.is_set() and not conversation.ended:
                if peer_closed(conn):
                    logger.info("reply connection %s closed by the client", peer)
                    conversation.end()
                    break
                try:
                    item = self.queue_in.get(timeout=ACCEPT_POLL_S)
                except queue.Empty:
                    continue
                if item is END:
                    return True
                if item.turn.conversation is not conversation:
                    continue  # left over from an earlier client
                if item.pcm:
                    conn.sendall(item.pcm)
                    self.metrics.audio_sent(item.turn)
                if item.last:
                    self.metrics.turn_done(item.turn)
        except OSError as e:
            logger.info("reply connection %s lost: %s", peer, e.strerror or e)
            conversation.end()
        finally:
            conn.close()
        return False
