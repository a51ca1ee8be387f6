"""Per-turn latency: logged as it happens, written as JSON lines, summarised at exit."""
from __future__ import annotations

import json
import logging
import statistics
import threading
from typing import Any

from utils.pipeline.messages import Turn

logger = logging.getLogger(__name__)

STAGES = ("transcript", "first_token", "first_sentence", "first_audio", "first_audio_sent")


class TurnMetrics:
    def __init__(self, metrics_file: str | None = None) -> None:
        self.metrics_file = metrics_file
        self.first_audio_latencies: list[float] = []
        self._lock = threading.Lock()
        self.observers: list = []  # told of every turn done or dropped (utils/health_server.py's Prometheus metrics)

    def audio_sent(self, turn: Turn) -> None:
        """Call for every block handed to the speaker or the client."""
        if not turn.mark("first_audio_sent"):
            return
        latency = turn.marks["first_audio_sent"] - turn.speech_end
        with self._lock:
            self.first_audio_latencies.append(latency)
        logger.info("turn %d: first audio %.0f ms after the end of speech", turn.id, latency * 1000)

    def turn_done(self, turn: Turn) -> None:
        for observer in self.observers:
            observer.turn_done(turn)
        if not self.metrics_file:
            return
        # speech_end_clock: time.monotonic() (system-wide on Linux), so a client on this machine can relate it to its own clock
        record: dict[str, Any] = {"turn": turn.id, "conversation": turn.conversation.id,
                                  "speech_end_clock": round(turn.speech_end, 4)}
        record.update({f"{name}_ms": round((turn.marks[name] - turn.speech_end) * 1000, 1)
                       for name in STAGES if name in turn.marks})
        if turn.end_decision is not None:  # how the end of the turn was decided
            record.update(end_decision=turn.end_decision, end_silence_ms=round(turn.end_silence_ms or 0, 1),
                          end_probability=None if turn.end_probability is None else round(turn.end_probability, 3),
                          sentence_end_probability=None if turn.sentence_end_probability is None
                          else round(turn.sentence_end_probability, 3))
        if turn.first_phrase is not None:
            record.update(first_phrase=turn.first_phrase, first_phrase_pieces=turn.first_phrase_pieces)
        with self._lock, open(self.metrics_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def turn_dropped(self, item) -> None:
        """A stage dropped the turn `item` belongs to (an error, nothing heard): no reply comes."""
        for observer in self.observers:
            observer.turn_dropped(item)

    def summary(self) -> str | None:
        values = sorted(self.first_audio_latencies)
        if not values:
            return None
        return (f"{len(values)} turns: time to first audio median {statistics.median(values) * 1000:.0f} ms, "
                f"min {values[0] * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms")
