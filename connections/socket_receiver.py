"""Receives the client's raw 16 kHz int16 audio, one client (one conversation) at a time."""
from __future__ import annotations

import logging
import queue
import socket
import threading

from connections.conversations import ConversationBoard
from connections.listening_socket import ACCEPT_POLL_S, accept, listen
from utils.messages import END, AudioFrame

logger = logging.getLogger(__name__)


class SocketReceiver:
    name = "SocketReceiver"

    def __init__(self, stop_event: threading.Event, queue_out: queue.Queue, should_listen: threading.Event,
                 board: ConversationBoard, host="localhost", port=12345, chunk_size=1024) -> None:
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.should_listen = should_listen
        self.board = board
        self.chunk_size = chunk_size
        self.sock = listen(host, port)  # bound now so a busy port fails at start-up
        self.dropped = 0
        logger.info("receiving audio on %s:%d", host, port)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                accepted = accept(self.sock)
                if accepted:
                    self._serve(*accepted)
        finally:
            self.sock.close()
            self.queue_out.put(END)

    def _serve(self, conn: socket.socket, peer: str) -> None:
        conversation = self.board.start()
        self.should_listen.set()
        logger.info("client %s connected (conversation %d)", peer, conversation.id)
        conn.settimeout(ACCEPT_POLL_S)
        reason = "disconnected"
        try:
            while not self.stop_event.is_set():
                if conversation.ended:
                    reason = "reply connection closed"
                    break
                try:
                    data = conn.recv(self.chunk_size)
                except socket.timeout:
                    continue
                except OSError as e:
                    reason = f"connection error: {e.strerror or e}"
                    break
                if not data:
                    break
                self._put(AudioFrame(data, conversation))
        finally:
            conversation.end()
            conn.close()
            logger.info("client %s %s; conversation %d ended", peer, reason, conversation.id)

    def _put(self, frame: AudioFrame) -> None:
        try:
            self.queue_out.put_nowait(frame)
        except queue.Full:
            # The VAD is far faster than real time; a full queue means a client flooding us.
            self.dropped += 1
            if self.dropped % 100 == 1:
                logger.warning("audio input queue full; dropped %d frames", self.dropped)
