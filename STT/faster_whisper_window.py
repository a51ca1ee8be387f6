"""Whisper on a shorter window than its 30 seconds, straight through CTranslate2.

Whisper pads every input to 30 s, and the encoder's cost grows with the frames it sees: on a 2-core CPU
that padding is most of the transcription time. An utterance padded with a few seconds of silence
instead reads as well (benchmarks/stt_window.py measures both) at a third of the cost.

It also says how sure Whisper was that the transcript ends where it stops: at the step that wrote its last token,
the probability of a full stop, question or exclamation mark or of the end of the text (not of more words, nor of
an ellipsis). A question cut mid-sentence by a pause often still gets its "?" ("Can you tell me?"), but with less
certainty than a finished one (benchmarks/turns.py). The end of the text counts too: Whisper writes some whole
questions as lower-case statements ("who invented the telephone.") and puts part of the weight there.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from utils.audio import SAMPLE_RATE

MAX_TOKENS_PER_S = 10  # speech runs at ~4 tokens/s; a cap stops a runaway repetition early
_ENDS_SENTENCE = re.compile(r"^\s*[.?!]")  # a token that ends a sentence: ".", "?", ' ?', '."'...
_ELLIPSIS = re.compile(r"^\s*\.\.")  # ...but "..." is a voice trailing off


class WindowTranscript(NamedTuple):
    text: str
    sentence_end_probability: float | None  # None: no text


class ShortWindowTranscriber:
    def __init__(self, model, language: str, pad_s: float) -> None:
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        self._storage_view = ctranslate2.StorageView.from_array
        self.model = model  # a faster_whisper.WhisperModel
        self.pad_samples = int(pad_s * SAMPLE_RATE)
        self.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        self.prompt = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]
        # where the text may stop: a sentence-end mark, or the end of the text
        self.stop_ids = np.append(sentence_end_tokens(model.hf_tokenizer, self.tokenizer.eot), self.tokenizer.eot)

    def fits(self, audio: np.ndarray) -> bool:
        return len(audio) + self.pad_samples < 30 * SAMPLE_RATE

    def __call__(self, audio: np.ndarray, beam_size: int = 1, temperature: float = 0.0) -> WindowTranscript:
        features = self.model.feature_extractor(audio, padding=self.pad_samples)[:, :-1]
        seconds = len(audio) / SAMPLE_RATE
        result = self.model.model.generate(
            self._storage_view(np.ascontiguousarray(features[None], dtype=np.float32)), [self.prompt],
            beam_size=beam_size, sampling_temperature=max(temperature, 1e-6) if temperature > 0 else 1.0,
            sampling_topk=0 if temperature > 0 else 1,
            max_length=min(448, len(self.prompt) + 16 + int(MAX_TOKENS_PER_S * seconds)),
            return_logits_vocab=True,  # (no cost to measure: ~89 ms with or without on a 3 s question)
        )[0]
        ids = result.sequences_ids[0]
        text = self.tokenizer.decode(ids).strip()
        return WindowTranscript(text, self._sentence_end_probability(result, len(ids)) if text else None)

    def _sentence_end_probability(self, result, n_tokens: int) -> float | None:
        """P(a sentence end or the end of the text) at the step that wrote the transcript's last token (beam
        search: the best hypothesis's steps)."""
        steps = result.logits[0] if result.logits else []
        if not 0 < n_tokens <= len(steps):
            return None
        scores = np.asarray(steps[n_tokens - 1], dtype=np.float64).ravel()
        return float(np.exp(np.logaddexp.reduce(scores[self.stop_ids]) - np.logaddexp.reduce(scores)))


def sentence_end_tokens(hf_tokenizer, eot: int) -> np.ndarray:
    """The ids of the text tokens that end a sentence ("?", "." and their forms with a space or a quote)."""
    vocab = hf_tokenizer.get_vocab()
    maybe = [i for token, i in vocab.items() if i < eot and any(c in token for c in ".?!")]
    return np.array(sorted(i for i in maybe if _ENDS_SENTENCE.match(text := hf_tokenizer.decode([i]))
                           and not _ELLIPSIS.match(text)), dtype=np.int64)
