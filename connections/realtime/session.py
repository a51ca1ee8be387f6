"""One Realtime WebSocket connection: its conversation on the shared pipeline, the client's events in, the
protocol's events out.

Everything protocol-side runs on the endpoint's event loop. The pipeline's threads reach the session only through
`ConversationEvents` calls and `send(AudioOut)`, which hand their data to the loop (call_soon_threadsafe); the one
answer they need at once, how much of a reply was heard, reads state kept under a lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from connections.realtime import protocol as rt
from connections.realtime.protocol import ProtocolError, SessionSettings
from utils.audio import BYTES_PER_SECOND, SAMPLE_RATE
from utils.pipeline.messages import (
    AudioFrame,
    AudioOut,
    Conversation,
    ConversationEvents,
    SpeechSegment,
    ToolCall,
    Transcript,
    Turn,
)
from utils.pipeline.reply_timeline import ReplyTimeline

logger = logging.getLogger(__name__)

PLAYBACK_LEAD_S = 0.5  # reply audio is sent at the pace it plays, this far ahead: what was sent is about what was heard
BURST_S = 5.0  # input audio a client may send ahead of real time
MAX_MANUAL_BUFFER_S = 60.0  # audio held for input_audio_buffer.commit (turn_detection null)
EVENTS_PER_S, EVENT_BURST = 100.0, 400  # client events allowed: a token bucket
MAX_REFUSED_EVENTS = 2000  # a client that goes on flooding past the limit is disconnected
REPLY_GRACE_S = 2.0


@dataclass
class _Response:
    """One reply under way: its ids, what was sent, and the resampler to the client's output rate."""

    turn: Turn
    id: str = field(default_factory=lambda: rt.new_id("resp"))
    item_id: str = field(default_factory=lambda: rt.new_id("item"))
    timeline: ReplyTimeline = field(default_factory=ReplyTimeline)
    resampler: Any = None
    done: bool = False
    audio_started: bool = False
    calls: list = field(default_factory=list)  # function_call items, in the order the model made them

    @property
    def ids(self) -> dict:
        """Where the spoken message's events point: this response, its item, its one audio part."""
        return {"response_id": self.id, "item_id": self.item_id, "output_index": 0, "content_index": 0}


class RealtimeSession(ConversationEvents):
    """Speaks the protocol on `ws`; `endpoint` gives the pipeline's queues, the metrics and the model's name."""

    def __init__(self, ws, endpoint, peer: str) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.peer = peer
        self.host = peer.rsplit(":", 1)[0]
        self.loop = asyncio.get_running_loop()
        self.settings = SessionSettings()
        self.conversation = Conversation(events=self, barge_in=endpoint.barge_in)
        self.conversation.paced_output = True
        self.session_id = rt.new_id("sess")
        self.created = time.monotonic()
        self.nonce = None  # (the socket server's pairing token: a Realtime session has none)
        self.has_reply_connection = True
        self._out: asyncio.Queue = asyncio.Queue()  # events to send, in order
        self._audio: asyncio.Queue = asyncio.Queue()  # AudioOut from the pipeline
        self._closed = threading.Event()
        self._lock = threading.Lock()  # guards what heard() reads from the VAD's thread
        self._responses: dict[int, _Response] = {}  # by turn id
        self._user_items: dict[int, str] = {}  # turn id -> the user item's id
        self._by_item: dict[str, _Response] = {}
        self._playing: _Response | None = None
        self._play_end = 0.0  # when the audio sent so far will have played at the client
        self._last_item_id: str | None = None
        self._speaking_item: str | None = None  # the id of the user item being spoken
        self._held = False  # speech over the reply: no more of its audio until it is cut or resumed
        self._pending_text: list[str] = []  # user text items waiting for response.create
        self._pending_outputs: list[tuple[str, str]] = []  # function_call_output items waiting for response.create
        self._open_calls: set[str] = set()  # call ids the model made that await their output
        self._manual = bytearray()  # input audio held for commit (turn_detection null), 16 kHz int16
        self._resampler_in: Any = None
        self._admitted = 0  # input bytes let into the pipeline (16 kHz)
        self._last_audio = self.created
        self._tokens = float(EVENT_BURST)
        self._tokens_at = self.created
        self._refused = 0

    # --- what the socket server's SessionRegistry needs of a session ---

    @property
    def id(self) -> int:
        return self.conversation.id

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def quiet_for(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(0.0, now - max(self._last_audio, self._play_end + REPLY_GRACE_S))

    def close(self, reason: str, code: int = 1001) -> None:
        """From any thread: end the conversation and close the socket with `reason`."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.conversation.end()
        logger.info("realtime client %s: %s; conversation %d ended", self.peer, reason, self.id)

        def close_ws() -> None:
            self.loop.create_task(self.ws.close(code, reason[:120]))

        try:
            self.loop.call_soon_threadsafe(close_ws)
        except RuntimeError:
            pass  # the loop is gone: so is the socket

    def join(self, timeout: float) -> None:
        pass

    def send(self, item: AudioOut) -> None:
        """Reply audio from the ReplyDispatcher's thread."""
        self._threadsafe(self._audio.put_nowait, item)

    # --- the connection ---

    async def run(self) -> None:
        self._emit("session.created", session=self._describe())
        writer = asyncio.create_task(self._write())
        speaker = asyncio.create_task(self._speak())
        try:
            async for message in self.ws:
                if self.closed:
                    break
                await self._on_message(message)
        finally:
            self.close("disconnected")
            speaker.cancel()
            self._out.put_nowait(None)
            try:
                await asyncio.wait_for(writer, 2.0)
            except (asyncio.TimeoutError, Exception):
                writer.cancel()

    async def _write(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            event = await self._out.get()
            if event is None:
                return
            try:
                await self.ws.send(json.dumps(event))
            except ConnectionClosed:
                return

    def _emit(self, kind: str, **payload) -> None:
        """Queue a server event (on the loop)."""
        self._out.put_nowait({"type": kind, "event_id": rt.new_id("event"), **payload})

    def _error(
        self, message: str, code: str = "invalid_request_error", param: str | None = None, event_id: str | None = None
    ) -> None:
        self._emit(
            "error",
            error={
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id,
            },
        )

    def _threadsafe(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop has stopped: the server is shutting down

    def _describe(self) -> dict:
        return self.settings.describe(self.session_id, self.endpoint.model_name)

    # --- client events ---

    def _allowed(self) -> bool:
        now = time.monotonic()
        self._tokens = min(EVENT_BURST, self._tokens + (now - self._tokens_at) * EVENTS_PER_S)
        self._tokens_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self._refused += 1
        if self._refused == 1 or self._refused % 500 == 0:
            self._error(
                f"too many events: at most {EVENTS_PER_S:.0f} per second; {self._refused} dropped",
                code="rate_limit_exceeded",
            )
        if self._refused > MAX_REFUSED_EVENTS:
            self.close("sent events far beyond the rate limit", code=1008)
        return False

    async def _on_message(self, message) -> None:
        if not self._allowed():
            return
        if isinstance(message, bytes):
            self._error("binary messages are not part of the protocol: send JSON text events")
            return
        try:
            event = json.loads(message)
        except ValueError as e:
            self._error(f"not a JSON event: {e}")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._error("an event must be a JSON object with a string 'type'")
            return
        handler = self._HANDLERS.get(event["type"])
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if handler is None:
            self._error(
                f"unsupported event type '{event['type']}'", code="unsupported_event", param="type", event_id=event_id
            )
            return
        try:
            handler(self, event)
        except ProtocolError as e:
            self._error(str(e), code=e.code, param=e.param, event_id=event_id)
        except Exception:
            logger.exception("realtime client %s: failed on %s", self.peer, event["type"])
            self._error(f"the server failed on {event['type']}; see its log", code="server_error", event_id=event_id)

    def _session_update(self, event: dict) -> None:
        settings = rt.updated(self.settings, event.get("session"), self.endpoint.tools_supported)
        if settings.input_rate != self.settings.input_rate:
            self._resampler_in = None
        if not settings.turn_detection and self.settings.turn_detection:
            self.conversation.barge_in = False
        self.settings = settings
        self.conversation.barge_in = settings.turn_detection and settings.interrupt_response and self.endpoint.barge_in
        self.conversation.instructions = settings.instructions
        self.conversation.tools = [
            {"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters") if k in t}}
            for t in settings.tools
        ]
        self._emit("session.updated", session=self._describe())

    def _append(self, event: dict) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ProtocolError("input_audio_buffer.append needs 'audio': base64 PCM16", param="audio")
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("'audio' is not valid base64", param="audio") from None
        if len(pcm) % 2:
            raise ProtocolError("'audio' must hold whole 16-bit samples (an even number of bytes)", param="audio")
        pcm = self._to_pipeline_rate(pcm)
        now = time.monotonic()
        if self._admitted + len(pcm) > (now - self.created + BURST_S) * BYTES_PER_SECOND:
            raise ProtocolError(
                "audio arrives faster than real time: this chunk was dropped", code="rate_limit_exceeded"
            )
        self._admitted += len(pcm)
        self._last_audio = now
        if not self.settings.turn_detection:
            if len(self._manual) + len(pcm) > MAX_MANUAL_BUFFER_S * BYTES_PER_SECOND:
                raise ProtocolError(
                    f"the input audio buffer holds {MAX_MANUAL_BUFFER_S:.0f} s already: commit or clear it",
                    code="buffer_full",
                )
            self._manual += pcm
            return
        try:
            self.endpoint.audio_frames.put_nowait(AudioFrame(pcm, self.conversation))
        except queue.Full:
            raise ProtocolError("the server is overloaded: audio dropped", code="server_busy") from None

    def _to_pipeline_rate(self, pcm: bytes) -> bytes:
        rate = self.settings.input_rate
        if rate == SAMPLE_RATE:
            return pcm
        if self._resampler_in is None:
            import soxr

            self._resampler_in = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="int16")
        return self._resampler_in.resample_chunk(np.frombuffer(pcm, "<i2")).astype("<i2").tobytes()

    def _commit(self, event: dict) -> None:
        if self.settings.turn_detection:
            raise ProtocolError(
                "with server VAD the server commits the buffer itself: set turn_detection to null to commit by hand"
            )
        if len(self._manual) < 0.1 * BYTES_PER_SECOND:
            raise ProtocolError(
                "the input audio buffer holds less than 100 ms of audio: nothing to commit",
                code="input_audio_buffer_commit_empty",
            )
        audio = np.frombuffer(bytes(self._manual), "<i2").astype(np.float32) / 32768.0
        self._manual.clear()
        turn = Turn(self.conversation, speech_end=time.monotonic())
        item_id = self._user_item(turn)
        self._emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=self._last_item_id)
        self._last_item_id = item_id
        self._emit("conversation.item.added", previous_item_id=None, item=rt.user_item(item_id, transcript=None))
        self._start(turn, lambda: self.endpoint.speech_segments.put_nowait(SpeechSegment(audio, turn)))

    def _clear(self, event: dict) -> None:
        self._manual.clear()
        self._emit("input_audio_buffer.cleared")

    def _item_create(self, event: dict) -> None:
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call_output" and self.conversation.tools:
            self._function_output(item)
            return
        text = rt.user_text(item)
        item_id = event["item"].get("id") if isinstance(event["item"].get("id"), str) else rt.new_id("item")
        self._pending_text.append(text)
        item = rt.user_item(item_id, text=text)
        self._emit("conversation.item.added", previous_item_id=self._last_item_id, item=item)
        self._emit("conversation.item.created", previous_item_id=self._last_item_id, item=item)
        self._emit("conversation.item.done", previous_item_id=self._last_item_id, item=item)
        self._last_item_id = item_id

    def _function_output(self, item: dict) -> None:
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(call_id, str) or call_id not in self._open_calls:
            raise ProtocolError(f"call_id {call_id!r} is not a function call awaiting its output", param="item.call_id")
        if not isinstance(output, str):
            raise ProtocolError("a function_call_output's 'output' must be a string", param="item.output")
        self._open_calls.discard(call_id)
        self._pending_outputs.append((call_id, output))
        item_id = item.get("id") if isinstance(item.get("id"), str) else rt.new_id("item")
        added = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
            "status": "completed",
        }
        self._emit("conversation.item.added", previous_item_id=self._last_item_id, item=added)
        self._emit("conversation.item.done", previous_item_id=self._last_item_id, item=added)
        self._last_item_id = item_id

    def _response_create(self, event: dict) -> None:
        if self._pending_outputs and not self._pending_text:
            outputs, self._pending_outputs = tuple(self._pending_outputs), []
            turn = Turn(self.conversation, speech_end=time.monotonic())
            self._start(turn, lambda: self.endpoint.transcripts.put_nowait(Transcript("", None, turn, outputs)))
            self._response(turn)
            return
        if not self._pending_text:
            if self.conversation.reply is not None:
                return  # the reply to the committed audio is under way: this is its response
            raise ProtocolError("nothing to respond to: add a user message (conversation.item.create) or audio first")
        text, self._pending_text = " ".join(self._pending_text), []
        if self.conversation.reply is not None:
            self.conversation.interrupt()  # a new question replaces the reply under way
        turn = Turn(self.conversation, speech_end=time.monotonic())
        self._start(turn, lambda: self.endpoint.transcripts.put_nowait(Transcript(text, None, turn)))
        self._response(turn)

    def _start(self, turn: Turn, put) -> None:
        self.conversation.reply_started(turn)
        try:
            put()
        except queue.Full:
            self.conversation.reply_finished(turn)
            raise ProtocolError("the server is overloaded: try again", code="server_busy") from None

    def _response_cancel(self, event: dict) -> None:
        if self.conversation.interrupt() is None:
            raise ProtocolError("no response is in progress", code="response_cancel_not_active")

    def _truncate(self, event: dict) -> None:
        item_id, audio_end_ms = event.get("item_id"), event.get("audio_end_ms")
        response = self._by_item.get(item_id) if isinstance(item_id, str) else None
        if response is None:
            raise ProtocolError(f"no assistant item '{item_id}' with audio in this conversation", param="item_id")
        if not isinstance(audio_end_ms, (int, float)) or isinstance(audio_end_ms, bool) or audio_end_ms < 0:
            raise ProtocolError("audio_end_ms must be a number of milliseconds >= 0", param="audio_end_ms")
        if audio_end_ms > response.timeline.total_ms + 1:
            raise ProtocolError(
                f"audio_end_ms {audio_end_ms} is past the item's audio ({response.timeline.total_ms:.0f} ms)",
                param="audio_end_ms",
            )
        response.turn.revise_heard(response.timeline.heard(audio_end_ms))
        self._emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=event.get("content_index", 0),
            audio_end_ms=int(audio_end_ms),
        )

    _HANDLERS = {
        "session.update": _session_update,
        "input_audio_buffer.append": _append,
        "input_audio_buffer.commit": _commit,
        "input_audio_buffer.clear": _clear,
        "conversation.item.create": _item_create,
        "conversation.item.truncate": _truncate,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }

    # --- the pipeline's events (on its threads) ---

    def speech_started(self, turn_audio_ms: float) -> None:
        self._threadsafe(self._speech_started, turn_audio_ms)

    def _speech_started(self, audio_ms: float) -> None:
        if self._speaking_item is None:
            self._speaking_item = rt.new_id("item")  # the user item this speech becomes, once committed
        self._emit(
            "input_audio_buffer.speech_started", audio_start_ms=int(max(0.0, audio_ms)), item_id=self._speaking_item
        )

    def speech_stopped(self, turn_audio_ms: float) -> None:
        self._threadsafe(self._speech_stopped, turn_audio_ms)

    def _speech_stopped(self, audio_ms: float) -> None:
        self._emit(
            "input_audio_buffer.speech_stopped", audio_end_ms=int(max(0.0, audio_ms)), item_id=self._speaking_item
        )

    def committed(self, turn: Turn) -> None:
        self._threadsafe(self._committed, turn)

    def _committed(self, turn: Turn) -> None:
        item_id = self._user_items.setdefault(turn.id, self._speaking_item or rt.new_id("item"))
        self._speaking_item = None
        self._emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=self._last_item_id)
        self._emit(
            "conversation.item.added", previous_item_id=self._last_item_id, item=rt.user_item(item_id, transcript=None)
        )
        self._last_item_id = item_id

    def transcribed(self, turn: Turn, text: str, language: str | None) -> None:
        self._threadsafe(self._transcribed, turn, text)

    def _transcribed(self, turn: Turn, text: str) -> None:
        item_id = self._user_item(turn)
        self._emit(
            "conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0, transcript=text
        )
        self._emit("conversation.item.done", previous_item_id=None, item=rt.user_item(item_id, transcript=text))
        if not turn.cancelled:
            self._response(turn)

    def dropped(self, turn: Turn) -> None:
        self._threadsafe(self._finish, turn, "failed", None)

    def heard(self, turn: Turn) -> str | None:
        with self._lock:
            response = self._responses.get(turn.id)
            if response is None:
                return ""  # nothing of it was sent yet
            played_ms = response.timeline.total_ms - 1000 * max(0.0, self._play_end - time.monotonic())
            return response.timeline.heard(played_ms)

    def reply_paused(self, turn: Turn) -> None:
        self._held = True  # (read by _speak on the loop: a plain flag is enough)

    def reply_resumed(self, turn: Turn) -> None:
        self._held = False

    def interrupted(self, turn: Turn) -> None:
        self._held = False
        self._threadsafe(self._finish, turn, "cancelled", "turn_detected" if self.settings.turn_detection else None)

    def function_call(self, turn: Turn, call: ToolCall) -> None:
        self._threadsafe(self._function_call, turn, call)

    def _function_call(self, turn: Turn, call: ToolCall) -> None:
        response = self._response(turn)
        item = {
            "id": rt.new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "completed",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        }
        index = len(response.calls) + (1 if response.audio_started else 0)
        response.calls.append(item)
        self._open_calls.add(call.call_id)
        self._emit("response.output_item.added", response_id=response.id, output_index=index, item=item)
        self._emit("conversation.item.added", previous_item_id=self._last_item_id, item=item)
        self._last_item_id = item["id"]
        self._emit(
            "response.function_call_arguments.done",
            response_id=response.id,
            item_id=item["id"],
            output_index=index,
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
        )
        self._emit("response.output_item.done", response_id=response.id, output_index=index, item=item)
        self._emit("conversation.item.done", previous_item_id=None, item=item)

    # --- responses ---

    def _user_item(self, turn: Turn) -> str:
        return self._user_items.setdefault(turn.id, rt.new_id("item"))

    def _response(self, turn: Turn) -> _Response:
        """The response to `turn`, announced (response.created, its item added) the first time it is asked for."""
        response = self._responses.get(turn.id)
        if response is not None:
            return response
        response = _Response(turn)
        with self._lock:
            self._responses[turn.id] = response
        self._by_item[response.item_id] = response
        self._emit("response.created", response=rt.response_object(response.id, "in_progress", []))
        return response

    def _start_audio_item(self, response: _Response) -> None:
        """The reply's spoken message, announced with its first audio (a reply that only calls a function has none)."""
        response.audio_started = True
        item = rt.assistant_item(response.item_id, None, "in_progress")
        self._emit("response.output_item.added", response_id=response.id, output_index=0, item=item)
        self._emit("conversation.item.added", previous_item_id=self._last_item_id, item=item)
        self._last_item_id = response.item_id
        self._emit("response.content_part.added", **response.ids, part={"type": "output_audio", "transcript": ""})

    async def _speak(self) -> None:
        """Send reply audio at the pace it plays (PLAYBACK_LEAD_S ahead), so a cut-in stops it at once and what was
        sent is what was heard; the transcript goes with the audio, sentence by sentence."""
        while True:
            item: AudioOut = await self._audio.get()
            turn = item.turn
            if turn.cancelled or self.closed:
                continue
            response = self._response(turn)
            if response.done:
                continue
            if item.pcm:
                ahead = self._play_end - time.monotonic()
                while self._held or ahead > PLAYBACK_LEAD_S:
                    await asyncio.sleep(max(0.01, min(0.05, ahead - PLAYBACK_LEAD_S)))
                    if turn.cancelled or self.closed:
                        break
                    ahead = self._play_end - time.monotonic()
                if turn.cancelled or self.closed:
                    continue
                self._send_audio(response, item)
            if item.last:
                self._finish(turn, "completed", None)

    def _send_audio(self, response: _Response, item: AudioOut) -> None:
        pcm = item.pcm
        if self.settings.output_rate != SAMPLE_RATE:
            if response.resampler is None:
                import soxr

                response.resampler = soxr.ResampleStream(SAMPLE_RATE, self.settings.output_rate, 1, dtype="int16")
            pcm = response.resampler.resample_chunk(np.frombuffer(pcm, "<i2")).astype("<i2").tobytes()
        seconds = len(item.pcm) / BYTES_PER_SECOND
        with self._lock:
            self._play_end = max(self._play_end, time.monotonic()) + seconds
            response.timeline.add(item.text, 1000 * seconds)
        first = not response.audio_started
        if first:
            self._start_audio_item(response)
        if item.text:
            self._emit(
                "response.output_audio_transcript.delta", **response.ids, delta=("" if first else " ") + item.text
            )
        self._emit("response.output_audio.delta", **response.ids, delta=base64.b64encode(pcm).decode("ascii"))
        self.endpoint.metrics.audio_sent(item.turn)

    def _finish(self, turn: Turn, status: str, reason: str | None) -> None:
        """The response to `turn` is over: completed, cancelled (a cut-in, response.cancel) or failed."""
        response = self._responses.get(turn.id)
        if response is None or response.done:
            if status != "completed":
                self.conversation.reply_finished(turn)
            return
        response.done = True
        transcript = response.timeline.text
        if status == "cancelled":
            transcript = turn.heard if turn.heard is not None else transcript
        output = list(response.calls)
        if response.audio_started:
            item = rt.assistant_item(
                response.item_id, transcript, "completed" if status == "completed" else "incomplete"
            )
            self._emit("response.output_audio.done", **response.ids)
            self._emit("response.output_audio_transcript.done", **response.ids, transcript=transcript)
            self._emit(
                "response.content_part.done", **response.ids, part={"type": "output_audio", "transcript": transcript}
            )
            self._emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
            self._emit("conversation.item.done", previous_item_id=None, item=item)
            output.insert(0, item)
        self._emit("response.done", response=rt.response_object(response.id, status, output, reason))
        if status == "completed":
            self.endpoint.metrics.turn_done(turn)
            self.conversation.reply_finished(turn)  # (paced: the last audio has just been sent)
        with self._lock:
            self._responses = {k: v for k, v in self._responses.items() if not v.done or v is response}
