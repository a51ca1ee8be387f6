"""Cuts the incoming 16 kHz int16 streams into utterances, one detector per conversation."""
from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass

import numpy as np

from utils.base_handler import BaseHandler
from utils.messages import AudioFrame, Conversation, SpeechSegment, Turn
from VAD.enhancement import load_enhancer
from VAD.silero_onnx import WINDOW, SileroOnnxModel
from VAD.utterance_detector import UtteranceDetector

logger = logging.getLogger(__name__)


@dataclass
class _Stream:
    """What the VAD keeps per conversation."""

    detector: UtteranceDetector
    pending: bytes = b""  # bytes short of a whole window (odd sizes, partial frames)
    last_speech_at: float = 0.0

    def restart(self) -> None:
        self.detector.reset()
        self.pending = b""


class VADHandler(BaseHandler):
    """AudioFrame in, SpeechSegment out. Audio that arrives while the assistant answers (the
    conversation's `should_listen` cleared) is dropped. The model's weights are shared by every
    conversation; its recurrent state is not."""

    def setup(self, config, model=None) -> None:
        self.config = config
        self.model = model or SileroOnnxModel(config.vad_model_path, sample_rate=config.sample_rate)
        # getattr: configs built by hand (tests) may predate the flag
        self.enhance = load_enhancer() if getattr(config, "audio_enhancement", False) else None
        # Freed with the conversation: nothing to clean up when a client leaves.
        self._streams: weakref.WeakKeyDictionary[Conversation, _Stream] = weakref.WeakKeyDictionary()

    def _stream(self, conversation: Conversation) -> _Stream:
        stream = self._streams.get(conversation)
        if stream is None:
            c = self.config
            detector = UtteranceDetector(self.model.fresh(), c.thresh, c.sample_rate, c.min_silence_ms,
                                         c.speech_pad_ms, c.min_speech_ms, c.max_speech_ms)
            stream = self._streams[conversation] = _Stream(detector)
        return stream

    def process(self, frame: AudioFrame):
        conversation = frame.conversation
        stream = self._stream(conversation)
        if not conversation.should_listen.is_set():
            stream.restart()
            return
        data = stream.pending + frame.pcm
        usable = len(data) - len(data) % (2 * WINDOW)
        stream.pending = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        for start in range(0, len(samples), WINDOW):
            utterance = stream.detector.push(samples[start:start + WINDOW])
            if stream.detector.hearing_speech:
                stream.last_speech_at = time.monotonic()
            if utterance is None:
                continue
            if utterance.skipped:
                logger.info("skipped an utterance of %.0f ms (%s)", utterance.speech_ms, utterance.skipped)
                continue
            logger.debug("utterance of %.0f ms", utterance.speech_ms)
            conversation.should_listen.clear()
            audio = utterance.audio if self.enhance is None else self.enhance(utterance.audio)  # the whole utterance
            yield SpeechSegment(audio, Turn(conversation, speech_end=stream.last_speech_at))
            stream.restart()
            return  # the rest of this frame is the assistant's turn: not listened to
