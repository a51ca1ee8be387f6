"""Cuts the incoming 16 kHz int16 stream into utterances."""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from utils.base_handler import BaseHandler
from utils.messages import AudioFrame, SpeechSegment, Turn
from VAD.enhancement import load_enhancer
from VAD.silero_onnx import WINDOW, SileroOnnxModel
from VAD.utterance_detector import UtteranceDetector

logger = logging.getLogger(__name__)


class VADHandler(BaseHandler):
    """AudioFrame in, SpeechSegment out. Audio that arrives while the assistant answers
    (`should_listen` cleared) is dropped, and the detector starts fresh for each conversation."""

    def setup(self, config, should_listen: threading.Event, model=None) -> None:
        self.should_listen = should_listen
        model = model or SileroOnnxModel(config.vad_model_path, sample_rate=config.sample_rate)
        # getattr: configs built by hand (tests) may predate the flag
        self.enhance = load_enhancer() if getattr(config, "audio_enhancement", False) else None
        self.detector = UtteranceDetector(
            model, config.thresh, config.sample_rate, config.min_silence_ms, config.speech_pad_ms,
            config.min_speech_ms, config.max_speech_ms,
        )
        self._conversation = None
        self._pending = b""  # bytes short of a whole window (odd sizes, partial frames)
        self._last_speech_at = 0.0

    def process(self, frame: AudioFrame):
        if frame.conversation is not self._conversation:
            self._conversation = frame.conversation
            self._restart()
        if not self.should_listen.is_set():
            self._restart()
            return
        data = self._pending + frame.pcm
        usable = len(data) - len(data) % (2 * WINDOW)
        self._pending = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        for start in range(0, len(samples), WINDOW):
            utterance = self.detector.push(samples[start:start + WINDOW])
            if self.detector.hearing_speech:
                self._last_speech_at = time.monotonic()
            if utterance is None:
                continue
            if utterance.skipped:
                logger.info("skipped an utterance of %.0f ms (%s)", utterance.speech_ms, utterance.skipped)
                continue
            logger.debug("utterance of %.0f ms", utterance.speech_ms)
            self.should_listen.clear()
            audio = utterance.audio if self.enhance is None else self.enhance(utterance.audio)  # the whole utterance
            yield SpeechSegment(audio, Turn(frame.conversation, speech_end=self._last_speech_at))
            self._restart()
            return  # the rest of this frame is the assistant's turn: not listened to

    def _restart(self) -> None:
        self.detector.reset()
        self._pending = b""
