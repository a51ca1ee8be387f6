"""Each stage alone, in this process, on the benchmark's inputs: the floor of the current design.

The handlers are the server's own classes built from the same flags, so a change to a handler moves
its floor too. One stage runs at a time; other users of the CPU only slow a stage down, so each
question's floor takes every stage's fastest of a few tries.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from benchmarks.measures import RATE, voiced_span
from LLM.base import FIRST_PHRASE_WORDS
from utils.pipeline.messages import Conversation, Sentence, SpeechSegment, Transcript, Turn
from utils.sentences import SentenceSplitter
from VAD.silero_onnx import WINDOW

logger = logging.getLogger(__name__)


@dataclass
class StageTimes:
    """One question through STT, LLM and TTS alone; seconds."""

    question: str
    audio_s: float  # the speech the STT was given
    stt_s: float
    transcript: str
    llm_first_token_s: float | None = None
    llm_first_sentence_s: float | None = None
    llm_tokens: int = 0  # streamed pieces; llama.cpp streams one per token
    llm_decode_s: float = 0.0  # from the first piece to the last
    first_sentence: str = ""
    tts_first_audio_s: float | None = None
    tts_total_s: float = 0.0
    tts_audio_s: float = 0.0  # length of the first sentence's audio
    tts_lead_silence_s: float = 0.0  # silence before the voice in that audio

    def floor_s(self, vad_wait_s: float, start_wait_s: float | None = None) -> float | None:
        """End of speech -> first voiced sample if every stage ran back to back with nothing else to do.
        With speculation the stages start after `start_wait_s` of silence, and the voice cannot start
        before the end of speech is confirmed after `vad_wait_s`."""
        if self.llm_first_sentence_s is None or self.tts_first_audio_s is None:
            return None
        work = self.stt_s + self.llm_first_sentence_s + self.tts_first_audio_s
        ready = vad_wait_s + work if start_wait_s is None else max(vad_wait_s, start_wait_s + work)
        return ready + self.tts_lead_silence_s


def fastest(tries: list[StageTimes]) -> StageTimes:
    """Each stage's best time over repeated tries of one question: other work on the CPU only ever slows
    a stage down, so the minimum is the floor. (Decoding is greedy: every try says the same words.)"""

    def best(name):
        values = [getattr(t, name) for t in tries if getattr(t, name) is not None]
        return min(values) if values else None

    timed = ("stt_s", "llm_first_token_s", "llm_first_sentence_s", "llm_decode_s", "tts_first_audio_s", "tts_total_s")
    return replace(tries[0], **{name: best(name) for name in timed})


def vad_wait_s(vad_config) -> float:
    """The silence the VAD must hear before it ends an utterance, plus the window that holds the last speech."""
    return vad_config.min_silence_ms / 1000 + WINDOW / RATE


def start_wait_s(vad_config) -> float | None:
    """The silence after which the stages start speculatively (None: they wait for the end of speech)."""
    speculative = getattr(vad_config, "speculative_silence_ms", 0)
    return speculative / 1000 + WINDOW / RATE if 0 < speculative < vad_config.min_silence_ms else None


class StageRunner:
    """The STT, LLM and TTS handlers of a PipelineConfig, loaded (and warmed up) in this process."""

    def __init__(self, config) -> None:
        from utils import console

        console.console.quiet = True  # the handlers print USER/ASSISTANT lines; the benchmark prints its table
        stop = threading.Event()
        (stt_backend, stt_config), (llm_backend, llm_config), (tts_backend, tts_config) = config.stt, config.llm, config.tts
        self.pad = np.zeros(int(config.vad.speech_pad_ms * RATE / 1000), np.float32)
        self.stt = stt_backend.load_handler()(stop, None, None, setup_kwargs={"config": stt_config})
        self.llm = llm_backend.load_handler()(stop, None, None, setup_kwargs={"config": llm_config})
        self.tts = tts_backend.load_handler()(stop, None, None,
                                              setup_kwargs={"config": tts_config})

    def best_of(self, repeats: int, questions: list[tuple[str, np.ndarray]]) -> list[StageTimes]:
        """The fastest of `repeats` tries of each question. The tries go through the questions in the
        server's order, never one question twice in a row: llama.cpp reuses the cached prefix of the
        previous prompt, and a repeated prompt would skip the prefill the server pays."""
        tries = [[self.run(text, speech) for text, speech in questions] for _ in range(max(1, repeats))]
        return [fastest(list(per_question)) for per_question in zip(*tries)]

    def run(self, question: str, speech: np.ndarray) -> StageTimes:
        """`speech`: int16 at 16 kHz without leading or trailing silence (the VAD adds its padding back)."""
        audio = np.concatenate([self.pad, speech.astype(np.float32) / 32768.0, self.pad])
        turn = Turn(Conversation(), speech_end=time.monotonic())
        started = time.monotonic()
        transcript = next(iter(self.stt.process(SpeechSegment(audio, turn))), None)
        times = StageTimes(question, len(audio) / RATE, time.monotonic() - started, transcript.text if transcript else "")
        if transcript is not None:
            self._llm(times, transcript)
        if times.first_sentence:
            self._tts(times, Sentence(times.first_sentence, transcript.language, turn))
        return times

    def _llm(self, times: StageTimes, transcript: Transcript) -> None:
        """Time to the first complete sentence, split as the LLM handler splits it; tokens/s over the whole reply."""
        splitter = SentenceSplitter(first_phrase_words=FIRST_PHRASE_WORDS)  # as the LLM handler splits
        started = first = last = time.monotonic()
        for piece in self.llm.stream(self.llm.messages_for(transcript)):  # a new conversation: no history
            last = time.monotonic()
            if times.llm_tokens == 0:
                first = last
                times.llm_first_token_s = first - started
            times.llm_tokens += 1
            done = splitter.push(piece)
            if done and not times.first_sentence:
                times.first_sentence, times.llm_first_sentence_s = done[0], last - started
        if not times.first_sentence:
            times.first_sentence, times.llm_first_sentence_s = splitter.flush(), last - started
        times.llm_decode_s = last - first

    def _tts(self, times: StageTimes, sentence: Sentence) -> None:
        started = time.monotonic()
        pcm = bytearray()
        for out in self.tts.process(sentence):
            if times.tts_first_audio_s is None and out.pcm:
                times.tts_first_audio_s = time.monotonic() - started
            pcm.extend(out.pcm)
        times.tts_total_s = time.monotonic() - started
        samples = np.frombuffer(bytes(pcm), dtype="<i2")
        times.tts_audio_s = len(samples) / RATE
        span = voiced_span(samples)
        times.tts_lead_silence_s = span[0] / RATE if span else 0.0
