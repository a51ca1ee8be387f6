"""Text to speech on any OpenAI-compatible server: each sentence is POSTed to {base_url}/audio/speech and spoken
as its bytes arrive.

The server answers raw PCM (24 kHz mono int16, OpenAI's `pcm` format), which is resampled to 16 kHz as one
stream (soxr, as the other 24 kHz voices) and cut into blocks: the first block goes out as soon as the first
few milliseconds of speech have arrived, not when the sentence is whole. A server that is down, slow or answers
an error drops the turn with one ERROR line; the rest of that reply is not sent to it.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Iterable, Iterator

import numpy as np

from TTS.base import TTSHandler, stream_blocks
from utils.openai_remote import Abandoned, RemoteCall, RemoteStageError, in_background, make_client
from utils.pipeline.messages import Sentence

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "tts-1"  # OpenAI's name; other servers want theirs in --tts_model_name
DEFAULT_VOICE = "alloy"
PCM_RATE = 24000  # what response_format=pcm means in the OpenAI API
SILENCE = 10 ** (-45 / 20)  # as utils.audio.trim_silence
KEEP_LEAD_S = 0.02
FAILED_TURNS_KEPT = 64


def pcm_pieces(chunks: Iterable[bytes]) -> Iterator[np.ndarray]:
    """Byte chunks of int16 little-endian PCM, split anywhere -> float32 pieces (a split sample is carried over)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        usable = len(data) - len(data) % 2
        rest = data[usable:]
        if usable:
            yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0


def without_leading_silence(pieces: Iterable[np.ndarray], rate: int, keep_s: float = KEEP_LEAD_S) -> Iterator[np.ndarray]:
    """Audio pieces with the silence before the first sound cut to `keep_s` (voices often start a sentence with
    a few hundred ms of it, which would delay the first sound of every reply), streamed: nothing is held back
    once the voice has started."""
    keep = max(1, int(keep_s * rate))
    quiet = np.zeros(0, dtype=np.float32)
    pieces = iter(pieces)
    for piece in pieces:
        loud = np.flatnonzero(np.abs(piece) > SILENCE)
        if len(loud) == 0:
            quiet = np.concatenate([quiet, piece])[-keep:]
            continue
        yield np.concatenate([quiet, piece])[max(0, len(quiet) + loud[0] - keep):]
        break
    yield from pieces


class OpenApiTTSHandler(TTSHandler):
    """Sentence in, AudioOut blocks out, streamed from the server. After the reply's last sentence the pipeline
    listens again, also when the server failed (the turn is dropped)."""

    def setup(self, config, model=None) -> None:
        """`model`: a ready openai.OpenAI client, for tests."""
        self.config = config
        self.client = model or make_client(config.base_url, config.api_key, config.timeout_s)
        self.model_name = config.model_name or DEFAULT_MODEL
        self.voice = config.voice or DEFAULT_VOICE
        self.remote = RemoteCall("TTS", config.base_url, "--tts_timeout_s", config.timeout_s, self.stop_event)
        self.failed_turns: deque[int] = deque(maxlen=FAILED_TURNS_KEPT)  # their later sentences are not spoken
        logger.info("text to speech on %s, model %s, voice %s", config.base_url, self.model_name, self.voice)
        self.warmup()

    def warmup(self) -> None:
        try:
            for _ in self.synthesize("Ready."):
                pass
        except RemoteStageError as e:  # the server may come up later: each turn tries again
            logger.warning("%s (each turn tries again)", e)
        except Abandoned:
            pass

    def _open(self, text: str, timeout: float):
        """Send the request; returns (the response's context manager, the response with its status read)."""
        manager = self.client.audio.speech.with_streaming_response.create(
            model=self.model_name, voice=self.voice, input=text, response_format="pcm", speed=self.config.speed,
            timeout=timeout,
        )
        return manager, manager.__enter__()

    def synthesize(self, text: str, cancelled=lambda: False) -> Iterator[bytes]:
        """16 kHz int16 blocks of `text` spoken, each yielded as soon as it is full."""
        chunks = in_background(lambda abandoned: self._stream(text, abandoned),
                               lambda: self.stop_event.is_set() or cancelled(), "tts-stream")
        pieces = without_leading_silence(pcm_pieces(chunks), PCM_RATE)
        yield from stream_blocks(pieces, PCM_RATE, self.config.blocksize)

    def _stream(self, text: str, abandoned) -> Iterator[bytes]:
        """The response's bytes as they arrive (on the request's own thread)."""
        manager, response = self.remote(lambda timeout: self._open(text, timeout), abandoned)
        try:
            kind = response.headers.get("content-type", "")
            if kind.startswith(("application/json", "text/")):
                raise self.remote.error(f"answered {kind} instead of audio: {response.read()[:200]!r}")
            chunks = response.iter_bytes()
            while not abandoned():
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except Exception as e:  # the transport's own errors (a time-out, a cut connection): the SDK passes them on
                    raise self.remote.error(f"the audio stream broke off ({type(e).__name__}: {e})") from e
                yield chunk
        finally:
            manager.__exit__(None, None, None)  # closes the connection early when the turn was abandoned

    def speak(self, sentence: Sentence) -> Iterator[bytes]:
        yield from self.synthesize(sentence.text, lambda: sentence.turn.cancelled)

    def process(self, sentence: Sentence):
        turn = sentence.turn
        if turn.id in self.failed_turns:
            return  # dropped already: the rest of the reply is not sent to a server that just failed
        try:
            yield from super().process(sentence)
        except Abandoned:
            pass  # stopping, or the turn was withdrawn: nobody waits for this audio
        except RemoteStageError as e:
            logger.error("%s; dropping this turn", e)
            self.failed_turns.append(turn.id)
            self.drop_turn(sentence)
