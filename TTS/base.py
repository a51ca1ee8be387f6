"""What every TTS backend shares: sentences in, fixed-size 16 kHz int16 blocks out, listening again after the reply."""
from __future__ import annotations

import time
from typing import Iterable, Iterator

import numpy as np

from utils.audio import SAMPLE_RATE, blocks, resample, to_int16
from utils.core_share import CORES
from utils.pipeline.base_handler import BaseHandler
from utils.pipeline.messages import AudioOut, Sentence

SETTLE_TIMEOUT_S = 3.0  # beyond --max_turn_silence_ms (at most 2.5 s): the VAD settles turns first


class TTSHandler(BaseHandler):
    """Subclasses write `setup` and `speak(sentence)`, which yields int16 blocks (bytes) of the
    configured size as soon as each is ready."""

    def speak(self, sentence: Sentence) -> Iterator[bytes]:
        raise NotImplementedError

    def process(self, sentence: Sentence) -> Iterator[AudioOut]:
        turn = sentence.turn
        if not self._settled(turn):
            return
        if sentence.text:
            text = sentence.text  # goes with the sentence's first block
            blocks = iter(self.speak(sentence))
            while True:
                with CORES.computing():  # the synthesis, not the wait for the queue
                    block = next(blocks, None)
                if block is None:
                    break
                turn.mark("first_audio")
                yield AudioOut(block, turn, text=text)
                text = ""
        if sentence.last:
            yield AudioOut(b"", turn, last=True)
            if not turn.conversation.paced_output:  # else its client's sink says when the reply has played
                turn.conversation.reply_finished(turn)


    def _settled(self, turn) -> bool:
        """A speculative turn is spoken only once confirmed. The VAD settles it within a few hundred ms of
        audio; if no audio comes (a stalled client) it counts as confirmed after SETTLE_TIMEOUT_S."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not turn.wait_settled(0.05):
            if self.stop_event.is_set() or turn.conversation.ended:
                return False
            if time.monotonic() > deadline:
                turn.confirm()
        return turn.confirmed


def pcm_blocks(audio: np.ndarray, rate: int, blocksize: int) -> list[bytes]:
    """A whole utterance (float in [-1, 1] at `rate`) -> 16 kHz int16 blocks, the last one zero-padded."""
    return blocks(to_int16(resample(np.asarray(audio).reshape(-1), rate, SAMPLE_RATE)), blocksize)


def stream_blocks(chunks: Iterable[np.ndarray], rate: int, blocksize: int) -> Iterator[bytes]:
    """Audio arriving in pieces -> 16 kHz int16 blocks, each yielded as soon as it is full; the pieces are
    resampled as one stream (no clicks where they meet) and only the very last block is zero-padded."""
    resampler = None
    if rate != SAMPLE_RATE:
        import soxr

        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    def convert(chunk: np.ndarray, last: bool) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        return to_int16(resampler.resample_chunk(chunk, last=last) if resampler is not None else chunk)

    pending = np.zeros(0, dtype="<i2")
    for chunk in chunks:
        pending = np.concatenate([pending, convert(chunk, last=False)])
        full = len(pending) - len(pending) % blocksize
        for start in range(0, full, blocksize):
            yield pending[start:start + blocksize].tobytes()
        pending = pending[full:]
    yield from blocks(np.concatenate([pending, convert(np.zeros(0, np.float32), last=True)]), blocksize)
