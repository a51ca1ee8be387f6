"""Speech to text on any OpenAI-compatible server: each utterance is POSTed to {base_url}/audio/transcriptions.

The utterance goes as a 16 kHz WAV through the official SDK. With --language auto the transcript carries the
language the server detected (verbose_json); a fixed language is sent with the audio. A server that is down,
slow or answers an error drops that turn with one ERROR line (429 and 5xx are retried within --stt_timeout_s).
"""
from __future__ import annotations

import io
import logging
import wave

import numpy as np

from STT.base import STTHandler
from utils.audio import SAMPLE_RATE
from utils.openai_remote import Abandoned, RemoteCall, RemoteStageError, in_background, make_client
from utils.pipeline.messages import SpeechSegment

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "whisper-1"  # OpenAI's name; other servers want theirs in --stt_model_name


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """float samples in [-1, 1] -> a mono int16 WAV file."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def language_code(detected: str | None) -> str | None:
    """A server's detected language as a code: 'en' stays 'en', OpenAI's 'english' becomes 'en'."""
    if not detected:
        return None
    name = detected.strip().lower()
    if len(name) <= 3 or "-" in name:
        return name
    try:
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE
    except ImportError:
        return None
    return TO_LANGUAGE_CODE.get(name)


class OpenApiSTTHandler(STTHandler):
    """SpeechSegment in, Transcript out (or the turn dropped with one ERROR line)."""

    def setup(self, config, model=None) -> None:
        """`model`: a ready openai.OpenAI client, for tests."""
        self.config = config
        self.client = model or make_client(config.base_url, config.api_key, config.timeout_s)
        self.model_name = config.model_name or DEFAULT_MODEL
        self.language = None if config.language == "auto" else config.language
        self.remote = RemoteCall("STT", config.base_url, "--stt_timeout_s", config.timeout_s, self.stop_event)
        self._should_stop = self.stop_event.is_set
        logger.info("speech to text on %s, model %s", config.base_url, self.model_name)
        self.warmup()

    def warmup(self) -> None:
        """One request at start-up: the connection opens and the server loads its model before the first question."""
        try:
            self.recognize(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))
        except RemoteStageError as e:  # the server may come up later: each turn tries again
            logger.warning("%s (each turn tries again)", e)
        except Abandoned:
            pass

    def request(self, audio: np.ndarray) -> dict:
        """The transcription request's fields, as the SDK's create() takes them."""
        fields = {"model": self.model_name, "file": ("speech.wav", wav_bytes(audio), "audio/wav"),
                  "response_format": "verbose_json" if self.language is None else "json"}
        if self.language is not None:
            fields["language"] = self.language
        temperature = self.config.gen_kwargs.get("temperature")
        if temperature:
            fields["temperature"] = temperature
        return fields

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        fields = self.request(audio)

        def transcribe(abandoned):
            yield self.remote(lambda timeout: self.client.audio.transcriptions.create(**fields, timeout=timeout), abandoned)

        result, = in_background(transcribe, self._should_stop, "stt-request")
        text = result if isinstance(result, str) else getattr(result, "text", None)  # a server may answer plain text
        if not isinstance(text, str):
            raise self.remote.error(f"the answer has no transcript text ({type(result).__name__})")
        return text.strip(), language_code(getattr(result, "language", None)) or self.language

    def process(self, segment: SpeechSegment):
        # recognize() stops waiting when the user goes on speaking (a speculative turn withdrawn) or at shutdown
        self._should_stop = lambda: self.stop_event.is_set() or segment.turn.cancelled
        try:
            yield from super().process(segment)
        except Abandoned:
            pass
        except RemoteStageError as e:
            logger.error("%s; dropping this turn", e)
            self.drop_turn(segment)
        finally:
            self._should_stop = self.stop_event.is_set
