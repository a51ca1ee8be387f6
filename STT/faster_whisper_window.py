"""Whisper on a shorter window than its 30 seconds, straight through CTranslate2.

Whisper pads every input to 30 s, and the encoder's cost grows with the frames it sees: on a 2-core CPU
that padding is most of the transcription time. An utterance padded with a few seconds of silence
instead reads as well (benchmarks/stt_window.py measures both) at a third of the cost.
"""
from __future__ import annotations

import numpy as np

from utils.audio import SAMPLE_RATE

MAX_TOKENS_PER_S = 10  # speech runs at ~4 tokens/s; a cap stops a runaway repetition early


class ShortWindowTranscriber:
    def __init__(self, model, language: str, pad_s: float) -> None:
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        self._storage_view = ctranslate2.StorageView.from_array
        self.model = model  # a faster_whisper.WhisperModel
        self.pad_samples = int(pad_s * SAMPLE_RATE)
        self.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        self.prompt = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]

    def fits(self, audio: np.ndarray) -> bool:
        return len(audio) + self.pad_samples < 30 * SAMPLE_RATE

    def __call__(self, audio: np.ndarray, beam_size: int = 1, temperature: float = 0.0) -> str:
        features = self.model.feature_extractor(audio, padding=self.pad_samples)[:, :-1]
        seconds = len(audio) / SAMPLE_RATE
        result = self.model.model.generate(
            self._storage_view(np.ascontiguousarray(features[None], dtype=np.float32)), [self.prompt],
            beam_size=beam_size, sampling_temperature=max(temperature, 1e-6) if temperature > 0 else 1.0,
            sampling_topk=0 if temperature > 0 else 1,
            max_length=min(448, len(self.prompt) + 16 + int(MAX_TOKENS_PER_S * seconds)),
        )
        return self.tokenizer.decode(result[0].sequences_ids[0]).strip()
