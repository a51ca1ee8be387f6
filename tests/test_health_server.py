"""/healthz and Prometheus /metrics (utils/health_server.py): the states, and the counters moving with real turns of
the real server (handlers, queues, sockets on loopback) on instant fake models."""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from arguments_classes.parsing import parse_arguments
from tests.fake_server import FakeServer
from tests.fakes import FakeWhisper
from utils.health_server import HealthServer, PipelineMetrics, serve
from utils.metrics import TurnMetrics
from utils.pipeline.messages import Conversation, Sentence, SpeechSegment, Turn


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port: int) -> dict:
    """{(name, labels as a sorted tuple): value} of every sample /metrics shows."""
    status, text = get(port, "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


class FakeManager:
    """What HealthServer.watch reads of a ThreadManager."""

    def __init__(self, handlers=()) -> None:
        self.handlers = list(handlers)
        self.release = threading.Event()
        self.threads = [threading.Thread(target=self.release.wait, name="stage", daemon=True)]
        self.threads[0].start()


def test_healthz_says_503_while_loading_200_while_running_and_503_while_stopping():
    health = HealthServer(PipelineMetrics(), "127.0.0.1", 0)
    try:
        assert get(health.port, "/healthz") == (503, "starting\n")
        manager = FakeManager()
        health.watch(manager)
        assert get(health.port, "/healthz") == (200, "ok\n")
        manager.release.set()  # a stage's thread ended
        manager.threads[0].join(5)
        assert get(health.port, "/healthz") == (503, "a stage has stopped\n")
        health.stopping()
        assert get(health.port, "/healthz") == (503, "stopping\n")
        assert get(health.port, "/nope")[0] == 404
    finally:
        health.close()
    with pytest.raises(urllib.error.URLError):
        get(health.port, "/healthz")


def test_a_busy_metrics_port_is_one_clear_error():
    health = HealthServer(PipelineMetrics(), "127.0.0.1", 0)
    try:
        from utils.errors import ConfigError

        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{health.port} \\(--metrics_port\\)"):
            HealthServer(PipelineMetrics(), "127.0.0.1", health.port)
    finally:
        health.close()


def test_metrics_port_is_off_by_default_and_checked():
    assert parse_arguments([]).module.metrics_port is None
    assert parse_arguments(["--metrics_port", "9100"]).module.metrics_port == 9100


def test_stage_times_add_up_to_the_time_to_first_audio():
    metrics = PipelineMetrics()
    turn = Turn(Conversation(), speech_end=100.0)
    for name, t in (("transcript", 100.3), ("first_token", 100.4), ("first_sentence", 100.5),
                    ("first_audio", 100.55), ("first_audio_sent", 100.56)):
        turn.mark(name, t)
    metrics.turn_done(turn)
    samples = {(s.name, tuple(s.labels.items())): s.value
               for family in text_string_to_metric_families(metrics.text().decode()) for s in family.samples}
    sums = {stage: samples[("s2s_stage_seconds_sum", (("stage", stage),))] for stage in ("stt", "llm", "tts", "send")}
    assert sums == pytest.approx({"stt": 0.3, "llm": 0.2, "tts": 0.05, "send": 0.01})
    assert samples[("s2s_time_to_first_audio_seconds_sum", ())] == pytest.approx(sum(sums.values()))
    assert samples[("s2s_turns_total", ())] == 1


def test_a_withdrawn_speculative_turn_is_not_counted_as_dropped():
    metrics = PipelineMetrics()
    kept, withdrawn = (Turn(Conversation(), 0.0, tentative=True) for _ in range(2))
    metrics.turn_dropped(SpeechSegment(None, kept))
    metrics.turn_dropped(Sentence("", None, withdrawn))
    kept.confirm()
    withdrawn.withdraw()
    counts = {s.labels["stage"]: s.value for family in text_string_to_metric_families(metrics.text().decode())
              for s in family.samples if s.name == "s2s_dropped_turns_total"}
    assert counts == {"vad": 0, "stt": 1, "llm": 0, "tts": 0}


@pytest.fixture
def watched_server():
    """The fake-model server with /metrics, as main() wires it: the STT fails on the first question."""
    server = FakeServer(FakeWhisper(RuntimeError("decoder crashed"), "what time is it"))
    health = serve(0, "127.0.0.1", server.metrics)
    health.watch(server.manager)
    yield server, health.port
    health.close()
    assert server.stop() == []


def test_metrics_move_with_the_turns_of_a_conversation(watched_server):
    server, port = watched_server
    before = scrape(port)
    assert value(before, "s2s_turns_total") == 0 and value(before, "s2s_active_sessions") == 0
    assert value(before, "s2s_errors_total", stage="stt") == 0

    replies = []
    asking = threading.Thread(target=lambda: replies.append(server.ask(timeout_s=3)))
    asking.start()
    deadline = time.monotonic() + 10
    while value(scrape(port), "s2s_active_sessions") != 1:
        assert time.monotonic() < deadline, "the conversation never showed in s2s_active_sessions"
        time.sleep(0.02)
    asking.join(15)
    failed = scrape(port)  # the first question: the STT crashed, the turn was dropped, nothing was said
    assert replies[0].first_at is None
    assert value(failed, "s2s_errors_total", stage="stt") == 1
    assert value(failed, "s2s_dropped_turns_total", stage="stt") == 1
    assert value(failed, "s2s_turns_total") == 0

    reply = server.ask()  # the next one is answered
    assert reply.first_at is not None
    deadline = time.monotonic() + 5
    while value(after := scrape(port), "s2s_active_sessions") != 0:  # the client left
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert value(after, "s2s_turns_total") == 1
    assert value(after, "s2s_time_to_first_audio_seconds_count") == 1
    assert 0 < value(after, "s2s_time_to_first_audio_seconds_sum") < 5
    assert {stage: value(after, "s2s_stage_seconds_count", stage=stage) for stage in ("stt", "llm", "tts", "send")} \
        == {"stt": 1, "llm": 1, "tts": 1, "send": 1}
    assert value(after, "s2s_errors_total", stage="stt") == 1 and value(after, "s2s_errors_total", stage="llm") == 0


def test_turn_metrics_tells_its_observers():
    seen = []
    metrics = TurnMetrics()
    metrics.observers.append(SimpleNamespace(turn_done=lambda t: seen.append(("done", t)),
                                             turn_dropped=lambda i: seen.append(("dropped", i))))
    turn = Turn(Conversation(), 0.0)
    metrics.turn_dropped("item")
    metrics.turn_done(turn)
    assert seen == [("dropped", "item"), ("done", turn)]
