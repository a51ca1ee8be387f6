"""One queue per hop, named after the message on it (utils/pipeline/messages.py), and the stop event."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

QUEUE_SIZE = 1000  # frames / blocks on the audio queues; bounds memory if a stage stalls


@dataclass
class Queues:
    audio_frames: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUE_SIZE))  # AudioFrame: connections -> VAD
    speech_segments: queue.Queue = field(default_factory=queue.Queue)  # SpeechSegment: VAD -> STT
    transcripts: queue.Queue = field(default_factory=queue.Queue)  # Transcript: STT -> LLM
    sentences: queue.Queue = field(default_factory=queue.Queue)  # Sentence: LLM -> TTS
    audio_out: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUE_SIZE))  # AudioOut: TTS -> connections
    stop_event: threading.Event = field(default_factory=threading.Event)
