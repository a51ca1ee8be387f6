"""An OpenAI-compatible server on loopback that records each request exactly as the SDK sent it.

It serves the three endpoints the pipeline's remote stages use:
    POST /v1/chat/completions       a scripted reply, streamed as server-sent events
    POST /v1/audio/transcriptions   a multipart WAV in; a transcript out (canned, or from `transcribe`: the tests
                                    give it the real bundled Whisper) as json, verbose_json or text
    POST /v1/audio/speech           JSON in; 24 kHz int16 PCM out (a tone, or `speak`: the tests give it hibari),
                                    streamed in chunks of `chunk_s` seconds, `chunk_delay_s` apart
and GET /v1/models. HTTP/1.1 with keep-alive, as real servers; leaving the `with` block cuts every connection,
so a server that went away is really gone.

Failures are scripted per request: `server.script.extend([500, 429, "slow", ...])` makes the next POSTs fail in
that order (see `fail`); `status` makes every chat request fail.
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time
import wave
from collections import deque
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

PCM_RATE = 24000


def tone_speech(text: str, rate: int = PCM_RATE) -> bytes:
    """0.1 s of a 440 Hz tone per word, as int16 PCM."""
    n = int(0.1 * rate) * max(1, len(text.split()))
    return (0.3 * 32767 * np.sin(np.arange(n) * 2 * np.pi * 440 / rate)).astype("<i2").tobytes()


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """A WAV file's int16 samples and rate."""
    with wave.open(io.BytesIO(data)) as f:
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2"), f.getframerate()


def form_fields(content_type: str, body: bytes) -> dict:
    """A multipart/form-data body -> {name: text}, and for the file part {name: bytes} plus filename and its type."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename() is not None:
            fields.update({name: payload, "filename": part.get_filename(), "file_content_type": part.get_content_type()})
        else:
            fields[name] = payload.decode()
    return fields


class RecordingServer:
    """`with RecordingServer(["Hi", " there."]) as server:` -> server.base_url and what was sent: server.requests
    (chat JSON bodies), server.transcriptions (form fields, "file" the WAV bytes), server.speeches (JSON bodies).

    `transcribe(wav_bytes, fields) -> (text, language)`: default the next of `transcripts` ("hello" when none is
    left), in English. `speak(text, fields) -> int16 PCM bytes at 24 kHz`: default a tone per word."""

    def __init__(self, pieces: list[str] = ("Hello.",), model: str = "fake-model", port: int = 0,
                 transcribe=None, speak=None) -> None:
        self.pieces, self.model = list(pieces), model
        self.requests: list[dict] = []
        self.transcriptions: list[dict] = []
        self.speeches: list[dict] = []
        self.speech_sent: list[tuple[float, float]] = []  # (first chunk, last chunk) written, time.monotonic()
        self.status = 200
        self.script: deque = deque()
        self.retry_after: str | None = "0"  # the Retry-After header of a scripted 429 / 503
        self.slow_s = 30.0  # how long "slow" and "stall" keep the client waiting (cut short when the server closes)
        self.chunk_s, self.chunk_delay_s = 0.1, 0.0
        self.transcripts: deque = deque()
        # The next chat requests that offer tools answer with these function calls, (name, arguments JSON) each,
        # instead of `pieces`.
        self.tool_calls: deque = deque()
        self.transcribe = transcribe or (lambda wav, fields: (self.transcripts.popleft() if self.transcripts else "hello", "en"))
        self.speak = speak or (lambda text, fields: tone_speech(text))
        self.closing = threading.Event()
        self._connections: set = set()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that gave up (a time-out test): no traceback
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> "RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # keep-alive connections too: the server is gone, not half gone
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)

    def _handler_class(self) -> type:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def setup(self):
                super().setup()
                with outer._lock:
                    outer._connections.add(self.connection)

            def finish(self):
                with outer._lock:
                    outer._connections.discard(self.connection)
                super().finish()

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": outer.model, "object": "model", "owned_by": "test"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = self._body()
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/audio/transcriptions"):
                    fields = form_fields(self.headers["Content-Type"], body)
                    outer.transcriptions.append(fields)
                    if self._scripted_failure():
                        return
                    self._transcription(fields)
                elif path.endswith("/audio/speech"):
                    request = json.loads(body)
                    outer.speeches.append(request)
                    if self._scripted_failure():
                        return
                    self._speech(request)
                elif path.endswith("/chat/completions"):
                    request = json.loads(body or b"{}")
                    outer.requests.append(request)
                    if outer.status != 200:
                        self._json(outer.status, {"error": {"message": "scripted failure", "type": "server_error"}})
                        return
                    if self._scripted_failure():
                        return
                    self._chat(request)
                else:
                    self._json(404, {"error": {"message": f"no such endpoint {path}"}})

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _scripted_failure(self) -> bool:
                """Play the next scripted outcome: True if it answered (or refused to)."""
                with outer._lock:
                    outcome = outer.script.popleft() if outer.script else None
                if outcome is None:
                    return False
                if isinstance(outcome, int):
                    headers = {"Retry-After": outer.retry_after} if outcome in (429, 503) and outer.retry_after else {}
                    self._json(outcome, {"error": {"message": f"scripted {outcome}", "type": "server_error"}}, headers)
                elif outcome == "slow":  # answers, but only after the client gave up
                    outer.closing.wait(outer.slow_s)
                    return False
                elif outcome == "garbage":
                    self._send(200, b"<html>502 Bad Gateway</html>", "application/json")
                elif outcome == "hang-up":  # closes the connection without a word
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif outcome == "stall":  # starts the audio, then stops sending
                    self._start_chunks("audio/pcm")
                    self._chunk(tone_speech("one")[:4800])
                    outer.closing.wait(outer.slow_s)
                    self.close_connection = True
                else:
                    raise ValueError(f"unknown scripted outcome {outcome!r}")
                return True

            def _transcription(self, fields: dict) -> None:
                text, language = outer.transcribe(fields["file"], fields)
                fmt = fields.get("response_format", "json")
                if fmt == "text":
                    self._send(200, text.encode(), "text/plain; charset=utf-8")
                elif fmt == "verbose_json":
                    samples, rate = wav_samples(fields["file"])
                    self._json(200, {"task": "transcribe", "language": language, "duration": len(samples) / rate,
                                     "text": text, "segments": []})
                else:
                    self._json(200, {"text": text})

            def _speech(self, request: dict) -> None:
                pcm = outer.speak(request["input"], request)
                step = 2 * int(outer.chunk_s * PCM_RATE)
                self._start_chunks("audio/pcm")
                first = None
                for start in range(0, len(pcm), step):
                    if start and outer.chunk_delay_s:
                        time.sleep(outer.chunk_delay_s)
                    self._chunk(pcm[start:start + step])
                    first = first or time.monotonic()
                outer.speech_sent.append((first, time.monotonic()))  # before the end: the client waits for it
                self._end_chunks()

            def _chat(self, request: dict) -> None:
                self._start_chunks("text/event-stream")
                if outer.tool_calls and request.get("tools"):
                    self._call(*outer.tool_calls.popleft())
                    return
                for piece in [None, *outer.pieces]:
                    delta = {"role": "assistant"} if piece is None else {"content": piece}
                    self._event({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": outer.model,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                self._event({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": outer.model,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self._chunk(b"data: [DONE]\n\n")
                self._end_chunks()

            def _call(self, name: str, arguments: str) -> None:
                """A function call streamed as the OpenAI API does: id and name first, the arguments in two pieces."""
                half = len(arguments) // 2
                deltas = [{"role": "assistant", "content": None},
                          {"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function",
                                           "function": {"name": name, "arguments": ""}}]},
                          {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]},
                          {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]}]
                for delta in deltas:
                    self._event({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": outer.model,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                self._event({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": outer.model,
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
                self._chunk(b"data: [DONE]\n\n")
                self._end_chunks()

            def _event(self, data: dict) -> None:
                self._chunk(f"data: {json.dumps(data)}\n\n".encode())

            def _start_chunks(self, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _chunk(self, data: bytes) -> None:
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()

            def _end_chunks(self) -> None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _json(self, status: int, data: dict, headers: dict | None = None) -> None:
                self._send(status, json.dumps(data).encode(), "application/json", headers)

            def _send(self, status: int, payload: bytes, content_type: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler
