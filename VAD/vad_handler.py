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
from VAD.utterance_detector import Utterance, UtteranceDetector

logger = logging.getLogger(__name__)

# Stands for the final cut of an utterance whose tentative turn was confirmed by a stage that waited too long.
_CONFIRMED_ELSEWHERE = Utterance(np.zeros(0, np.float32), 0.0)


@dataclass
class _Stream:
    """What the VAD keeps per conversation."""

    detector: UtteranceDetector
    pending: bytes = b""  # bytes short of a whole window (odd sizes, partial frames)
    last_speech_at: float = 0.0
    tentative: Turn | None = None  # started on a short silence, not yet confirmed or withdrawn

    def restart(self) -> None:
        self.detector.reset()
        self.pending = b""
        if self.tentative is not None:
            self.tentative.withdraw()  # (no-op once confirmed)
            self.tentative = None


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
                                         c.speech_pad_ms, c.min_speech_ms, c.max_speech_ms,
                                         getattr(c, "speculative_silence_ms", 0))
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
                if stream.tentative is not None:  # the user goes on: the speculative turn is void
                    logger.debug("turn %d withdrawn: the user went on speaking", stream.tentative.id)
                    stream.tentative.withdraw()
                    stream.tentative = None
            if stream.tentative is not None and stream.tentative.confirmed:
                utterance = utterance or _CONFIRMED_ELSEWHERE  # the TTS stopped waiting for us (no audio came)
            if utterance is None:
                continue
            if utterance.skipped:
                if utterance.final:
                    logger.info("skipped an utterance of %.0f ms (%s)", utterance.speech_ms, utterance.skipped)
                continue
            if not utterance.final:
                stream.tentative = Turn(conversation, speech_end=stream.last_speech_at, tentative=True)
                yield self._segment(utterance, stream.tentative)
                continue
            conversation.should_listen.clear()
            if stream.tentative is not None:
                stream.tentative.confirm()  # its work is already under way
                stream.tentative = None
            else:
                yield self._segment(utterance, Turn(conversation, speech_end=stream.last_speech_at))
            stream.restart()
            return  # the rest of this frame is the assistant's turn: not listened to

    def _segment(self, utterance, turn: Turn) -> SpeechSegment:
        logger.debug("utterance of %.0f ms%s", utterance.speech_ms, "" if utterance.final else " (speculative)")
        audio = utterance.audio if self.enhance is None else self.enhance(utterance.audio)  # the whole utterance
        return SpeechSegment(audio, turn)
