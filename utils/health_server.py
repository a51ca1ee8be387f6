"""Health and metrics for operators, on --metrics_port (off by default).

    GET /healthz   200 "ok" once every stage is loaded and running; 503 while loading, after a stage stopped,
                   and while shutting down (a load balancer stops sending clients)
    GET /metrics   Prometheus text: active sessions, turns, dropped turns and errors by stage, histograms of the
                   time to first audio and of what each stage added to it

The metrics live in a registry of their own (not prometheus_client's global one), so that several pipelines in
one process (tests) do not share counters.
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from utils.errors import ConfigError
from utils.pipeline.messages import AudioFrame, Sentence, SpeechSegment, Transcript, Turn

logger = logging.getLogger(__name__)

STAGES = ("vad", "stt", "llm", "tts")
STAGE_OF_MESSAGE = {AudioFrame: "vad", SpeechSegment: "stt", Transcript: "llm", Sentence: "tts"}  # who dropped it
STAGE_OF_PACKAGE = {"VAD": "vad", "STT": "stt", "LLM": "llm", "TTS": "tts", "connections": "connections"}
# What each stage adds to the time to first audio, between two marks of the turn (None: the end of speech).
# They add up to the time to first audio. stt includes the VAD's wait for the silence that ends a turn.
SPANS = (("stt", None, "transcript"), ("llm", "transcript", "first_sentence"),
         ("tts", "first_sentence", "first_audio"), ("send", "first_audio", "first_audio_sent"))
BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class PipelineMetrics:
    """The Prometheus metrics of one server. A TurnMetrics observer: turn_done(turn), turn_dropped(item)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Gauge("s2s_active_sessions", "Conversations connected now.", registry=r)
        self.turns = Counter("s2s_turns", "Turns answered (the reply's last audio sent).", registry=r)
        self.dropped = Counter("s2s_dropped_turns", "Turns that got no reply, by the stage that dropped them.",
                               ["stage"], registry=r)
        self.errors = Counter("s2s_errors", "ERROR lines logged, by the stage whose thread logged them.", ["stage"], registry=r)
        self.first_audio = Histogram("s2s_time_to_first_audio_seconds",
                                     "From the end of the user's speech to the reply's first audio sent.",
                                     buckets=BUCKETS_S, registry=r)
        self.stage_time = Histogram("s2s_stage_seconds", "What each stage added to the time to first audio: stt (end "
                                    "of speech to transcript, with the VAD's wait for silence), llm (to the first "
                                    "sentence), tts (to its first audio), send (to the first block sent).",
                                    ["stage"], buckets=BUCKETS_S, registry=r)
        for stage in STAGES:  # zeros from the start: a rate() needs a first sample
            self.dropped.labels(stage)
            self.errors.labels(stage)
        self.sessions.set(0)

    def turn_done(self, turn: Turn) -> None:
        self.turns.inc()
        first_audio = turn.since_speech_end("first_audio_sent")
        if first_audio is not None:
            self.first_audio.observe(first_audio)
        for stage, start, end in SPANS:
            begun = turn.speech_end if start is None else turn.marks.get(start)
            if begun is not None and end in turn.marks:
                self.stage_time.labels(stage).observe(max(0.0, turn.marks[end] - begun))

    def turn_dropped(self, item) -> None:
        counter = self.dropped.labels(STAGE_OF_MESSAGE.get(type(item), "other"))
        turn = getattr(item, "turn", None)
        if turn is None:
            counter.inc()
        else:  # a speculative turn counts only once confirmed: one withdrawn was no turn at all
            turn.when_confirmed(counter.inc)

    def count_sessions(self, count: Callable[[], int]) -> None:
        self.sessions.set_function(count)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class ErrorCounter(logging.Handler):
    """Counts ERROR records by the stage of the thread that logged them (threads are named after handlers)."""

    def __init__(self, metrics: PipelineMetrics, stage_of_thread: dict[str, str]) -> None:
        super().__init__(logging.ERROR)
        self.metrics = metrics
        self.stage_of_thread = stage_of_thread

    def emit(self, record: logging.LogRecord) -> None:
        name = record.threadName or ""
        stage = self.stage_of_thread.get(name) or ("connections" if name.startswith("client-") else "other")
        self.metrics.errors.labels(stage).inc()


def stage_of(handler) -> str:
    """'stt' for a handler of STT/..., 'connections' for the socket server..."""
    return STAGE_OF_PACKAGE.get(type(handler).__module__.split(".")[0], "other")


def active_sessions(handlers) -> Callable[[], int]:
    """How many conversations are connected: the socket server's registry, or local mode's one conversation."""
    for handler in handlers:
        registry = getattr(handler, "registry", None)  # read only: SocketServer's SessionRegistry
        if registry is not None:
            return lambda: len(registry)
    return lambda: 1


class HealthServer:
    """Serves /healthz and /metrics from a thread of its own. Its state goes starting -> ready -> stopping."""

    def __init__(self, metrics: PipelineMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.state = "starting"
        self.alive: Callable[[], bool] = lambda: True
        self.error_counter: ErrorCounter | None = None
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as e:
            raise ConfigError(f"cannot serve metrics on {host}:{port} (--metrics_port): {e.strerror or e}") from e
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="health-server", daemon=True)
        self.thread.start()
        logger.info("health and metrics on http://%s:%d/healthz and /metrics", host, self.port)

    def health(self) -> tuple[int, str]:
        if self.state != "ready":
            return 503, self.state
        if not self.alive():
            return 503, "a stage has stopped"
        return 200, "ok"

    def watch(self, manager) -> None:
        """Every stage is loaded and its thread started: ready, while all of `manager`'s threads run."""
        self.metrics.count_sessions(active_sessions(manager.handlers))
        self.error_counter = ErrorCounter(self.metrics, {h.name: stage_of(h) for h in manager.handlers})
        logging.getLogger().addHandler(self.error_counter)
        self.alive = lambda: all(t.is_alive() for t in manager.threads)
        self.state = "ready"

    def stopping(self) -> None:
        self.state = "stopping"

    def close(self) -> None:
        self.state = "stopping"
        if self.error_counter is not None:
            logging.getLogger().removeHandler(self.error_counter)
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2)


def serve(port: int, host: str, turn_metrics) -> HealthServer:
    """A HealthServer whose metrics follow `turn_metrics` (a TurnMetrics); /healthz says 503 until watch()."""
    metrics = PipelineMetrics()
    turn_metrics.observers.append(metrics)
    return HealthServer(metrics, host, port)


def _handler_for(server: HealthServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # scrapes every few seconds: not worth a log line each
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if path == "/healthz":
                status, text = server.health()
                self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._send(200, server.metrics.text(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: /healthz or /metrics\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
