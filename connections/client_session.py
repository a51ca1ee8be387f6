"""One connected client: its conversation, its two sockets and the threads that serve them."""
from __future__ import annotations

import logging
import queue
import socket
import threading
import time

from connections import handshake
from connections.listening_socket import ACCEPT_POLL_S
from connections.reply_sink import ReplySink
from utils.audio import BYTES_PER_SECOND
from utils.metrics import TurnMetrics
from utils.pipeline.messages import AudioFrame, AudioOut, Conversation, ConversationEvents, Turn, is_cancelled
from utils.pipeline.reply_timeline import ReplyProgress

logger = logging.getLogger(__name__)

BURST_S = 5.0  # audio a client may send ahead of real time (a file streamed fast, a network hiccup)
OUTBOX_BLOCKS = 1000  # ~32 s of reply audio waiting for a slow client; past that it is not reading
SEND_TIMEOUT_S = 10.0  # a client that takes no data for this long is dropped instead of blocking its writer
# A client counts as active only while it streams audio: at least this fraction of real time over a window
# (a connection trickling a few bytes is not a conversation and must not hold a place), or while it plays a reply.
MIN_AUDIO_FRACTION = 0.25
AUDIO_WINDOW_S = 2.0
REPLY_GRACE_S = 2.0  # after its reply has played, a half-duplex client takes a moment to stream again
# Reply audio goes out at the pace it plays, this far ahead of the client's speaker: when the user cuts in, the
# server stops sending and even a client with no control channel (a classic one) falls silent within it.
PLAYBACK_LEAD_S = 0.15
PACE_POLL_S = 0.01


class ClientSession(ConversationEvents):
    """Reads the client's audio into the shared input queue (paced: a flood is dropped, not queued) and
    writes its reply audio from a bounded outbox, at the pace it plays. `close()` ends the conversation and frees
    everything. A full-duplex client (its reply connection sent the S2S2 token) may talk over the reply: the
    barge-in events below hold, resume and drop the reply audio here."""

    def __init__(self, conn: socket.socket, peer: str, input_queue: queue.Queue, metrics: TurnMetrics,
                 chunk_size: int, idle_timeout_s: float, on_close, order: int = 0, barge_in: bool = False) -> None:
        self.conversation = Conversation(events=self)
        self._barge_in_allowed = barge_in
        self._held = threading.Event()  # the user may be cutting in: send nothing until released
        self._reply = ReplyProgress()  # the reply being sent: what it says, when, and how much has gone
        self._sending: Turn | None = None  # the turn of the block the writer is sending
        self.peer = peer
        self.host = peer.rsplit(":", 1)[0]
        self.created = time.monotonic()
        self.order = order  # the accept loop's round it came in (connections/pairing.py)
        self.nonce = handshake.new_nonce()  # the client proves its reply connection with it
        self._last_audio = self.created  # when it last streamed audio at a useful rate
        self._reply_played_until = 0.0  # when the reply audio sent so far has played out at the client
        self._hold_started: float | None = None  # the client holds the reply's sound since then (a HOLD frame)
        self._play_lock = threading.Lock()  # the writer and the VAD's barge-in events both move the two above
        self._recv_conn = conn
        self._send_conn: socket.socket | None = None
        self._input_queue = input_queue
        self._metrics = metrics
        self._chunk_size = chunk_size
        self._idle_timeout_s = idle_timeout_s
        self._on_close = on_close
        self.outbox: queue.Queue = queue.Queue(OUTBOX_BLOCKS)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self.dropped_input = 0  # chunks
        self.admitted_bytes = 0  # audio let into the pipeline
        self._reader = threading.Thread(target=self._read, name=f"client-{self.conversation.id}-in", daemon=True)

    @property
    def id(self) -> int:
        return self.conversation.id

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def has_reply_connection(self) -> bool:
        return self._send_conn is not None

    def start(self) -> None:
        try:  # the client may read it to pair its reply connection exactly (connections/handshake.py)
            self._recv_conn.sendall(handshake.token(self.nonce))
        except OSError:
            pass  # gone already: the reader finds out and closes the session
        self._reader.start()

    def attach_reply_connection(self, conn: socket.socket, full_duplex: bool = False) -> None:
        with self._lock:
            if self.closed:
                conn.close()
                return
            self._send_conn = conn
            if full_duplex and self._barge_in_allowed:
                self.conversation.barge_in = True
                self.conversation.paced_output = True  # its microphone stays open: the reply is over once sent
                logger.info("client %s is full duplex: it may talk over the reply", self.peer)
        threading.Thread(target=self._write, args=(conn,), name=f"client-{self.id}-out", daemon=True).start()

    def quiet_for(self, now: float | None = None) -> float:
        """Seconds since the client last streamed audio or heard a reply: how idle it is."""
        now = time.monotonic() if now is None else now
        return max(0.0, now - max(self._last_audio, self._reply_played_until + REPLY_GRACE_S))

    def close(self, reason: str) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self.conversation.end()
        handshake.send_notice(self._recv_conn, reason)
        for conn in (self._recv_conn, self._send_conn):
            if conn is not None:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
        logger.info("client %s: %s; conversation %d ended", self.peer, reason, self.id)
        self._on_close(self)

    def join(self, timeout: float) -> None:
        if self._reader is not threading.current_thread():
            self._reader.join(timeout)

    # --- the reader thread ---

    def _read(self) -> None:
        conn = self._recv_conn
        conn.settimeout(ACCEPT_POLL_S)
        window_start, window_bytes = self.created, 0
        reason = "disconnected"
        try:
            while not self.closed:
                try:
                    data = conn.recv(self._chunk_size)
                except socket.timeout:
                    data = None
                now = time.monotonic()
                if data is not None:
                    window_bytes += len(data)
                if now - window_start >= AUDIO_WINDOW_S:
                    if window_bytes >= MIN_AUDIO_FRACTION * BYTES_PER_SECOND * (now - window_start):
                        self._last_audio = now
                    window_start, window_bytes = now, 0
                if self.quiet_for(now) > self._idle_timeout_s:
                    reason = f"sent no audio for {self._idle_timeout_s:g} s"
                    break
                if data is None:
                    continue
                if not data:
                    break
                # only what is let in counts: a past flood's dropped excess is not held against later audio
                if self.admitted_bytes + len(data) > (now - self.created + BURST_S) * BYTES_PER_SECOND:
                    self._drop_input("sends faster than real time")
                    continue
                try:
                    self._input_queue.put_nowait(AudioFrame(data, self.conversation))
                    self.admitted_bytes += len(data)
                except queue.Full:
                    self._drop_input("the input queue is full")
        except OSError as e:
            reason = f"connection error: {e.strerror or e}"
        finally:
            self.close(reason)

    def _drop_input(self, why: str) -> None:
        self.dropped_input += 1
        if self.dropped_input in (1, 1000) or self.dropped_input % 10000 == 0:
            logger.warning("client %s %s: %d audio chunks dropped", self.peer, why, self.dropped_input)

    # --- the writer thread ---

    def _write(self, conn: socket.socket) -> None:
        sink = ReplySink(lambda pcm: self._send_pcm(conn, pcm), self._metrics)
        reason = None
        try:
            conn.settimeout(SEND_TIMEOUT_S)
            while not self.closed:
                try:
                    item = self.outbox.get(timeout=ACCEPT_POLL_S)
                except queue.Empty:
                    continue
                if is_cancelled(item) or not self._paced(item):
                    continue  # cut short by the user: the rest of it is not sent
                self._sending = item.turn
                sink.deliver(item)
                if item.last and self.conversation.paced_output:
                    self.conversation.reply_finished(item.turn)
        except socket.timeout:
            reason = f"took no reply audio for {SEND_TIMEOUT_S:.0f} s"
        except OSError as e:
            reason = f"reply connection lost ({e.strerror or e})"
        finally:
            if reason and not self.closed:
                self.close(reason)

    def _paced(self, item: AudioOut) -> bool:
        """Wait until the block is due (PLAYBACK_LEAD_S before the client plays it) and not held; False if the
        turn was cut meanwhile."""
        while not self.closed:
            if is_cancelled(item):
                return False
            if not self._held.is_set() and self._reply_played_until - time.monotonic() <= PLAYBACK_LEAD_S:
                return True
            time.sleep(PACE_POLL_S)
        return False

    # --- barge-in (ConversationEvents, on the VAD's thread) ---

    # The sound stops at the client at once (a HOLD frame: connections/handshake.py), not only once the lead it was
    # sent ahead has played out; the writer sends nothing more until released.

    def reply_paused(self, turn: Turn) -> None:
        self._held.set()
        with self._play_lock:
            self._hold_started = time.monotonic()
        self._control(handshake.HOLD)

    def reply_resumed(self, turn: Turn) -> None:
        with self._play_lock:  # what the client held plays on from now
            if self._hold_started is not None:
                unplayed_s = max(0.0, self._reply_played_until - self._hold_started)
                if unplayed_s:
                    self._reply_played_until = time.monotonic() + unplayed_s
                self._hold_started = None
        self._control(handshake.RELEASE)
        self._held.clear()

    def interrupted(self, turn: Turn) -> None:
        with self._play_lock:  # the client drops what it held: nothing of this reply is left to play
            self._hold_started = None
            self._reply_played_until = min(self._reply_played_until, time.monotonic())
        self._control(handshake.FLUSH)
        self._held.clear()  # the writer drops the rest of the turn's audio as it comes to it

    def heard(self, turn: Turn) -> str | None:
        """What was sent, less what the client has not played yet (when it holds the sound: had not played then)."""
        with self._play_lock:
            played_to = self._hold_started if self._hold_started is not None else time.monotonic()
            unplayed_s = max(0.0, self._reply_played_until - played_to)
            return self._reply.heard(turn, 1000 * unplayed_s)

    def _control(self, code: int) -> None:
        if self.conversation.barge_in and not handshake.send_control(self._recv_conn, code):
            logger.debug("client %s: control frame %d not sent (it does not read its audio connection)", self.peer, code)

    def _send_pcm(self, conn: socket.socket, pcm: bytes) -> None:
        conn.sendall(pcm)
        with self._play_lock:  # how much has gone and when it plays out move together (heard() reads both)
            self._reply.went_out(self._sending, pcm)
            self._reply_played_until = max(self._reply_played_until, time.monotonic()) + len(pcm) / BYTES_PER_SECOND

    def send(self, item) -> None:
        """Queue reply audio for the writer; a client that stopped reading is dropped, not waited for."""
        if isinstance(item, AudioOut) and item.turn is not None and not is_cancelled(item):
            with self._play_lock:
                self._reply.queued(item.turn, item.text, item.pcm)
        try:
            self.outbox.put_nowait(item)
        except queue.Full:
            self.close("is not reading the reply")
