"""Which words of a reply a listener has heard: the reply's sentences laid out on its audio's time line."""

from __future__ import annotations

from dataclasses import dataclass

from utils.audio import BYTES_PER_SECOND


@dataclass
class _Piece:
    text: str
    start_ms: float
    duration_ms: float = 0.0


class ReplyTimeline:
    """Fed block by block as the reply's audio goes out (AudioOut.text starts a sentence); `heard(ms)` gives the text
    spoken in the first `ms` of audio: whole sentences, then the share of the next one's words its played share covers."""

    def __init__(self) -> None:
        self._pieces: list[_Piece] = []
        self.total_ms = 0.0

    def add(self, text: str, duration_ms: float) -> None:
        if text:
            self._pieces.append(_Piece(text.strip(), self.total_ms))
        if self._pieces:
            self._pieces[-1].duration_ms += duration_ms
        self.total_ms += duration_ms

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self._pieces if p.text)

    def heard(self, played_ms: float) -> str:
        words: list[str] = []
        for piece in self._pieces:
            if played_ms >= piece.start_ms + piece.duration_ms:
                words += piece.text.split()
                continue
            if played_ms > piece.start_ms and piece.duration_ms > 0:
                share = (played_ms - piece.start_ms) / piece.duration_ms
                piece_words = piece.text.split()
                words += piece_words[: int(len(piece_words) * share)]
            break
        return " ".join(words)


class ReplyProgress:
    """The reply on its way to one listener: its timeline, laid out as the TTS hands its blocks over (`queued`: each
    sentence whole, so its words spread over all its audio, not over the part sent so far), and how much of its audio
    has gone towards the listener (`went_out`). A block of another turn starts a new reply."""

    def __init__(self) -> None:
        self.turn: object | None = None
        self.timeline = ReplyTimeline()
        self.out_ms = 0.0

    def queued(self, turn: object, text: str, pcm: bytes) -> None:
        if turn is not self.turn:
            self.turn, self.timeline, self.out_ms = turn, ReplyTimeline(), 0.0
        self.timeline.add(text, _block_ms(pcm))

    def went_out(self, turn: object, pcm: bytes) -> None:
        if turn is self.turn:
            self.out_ms += _block_ms(pcm)

    def heard(self, turn: object, unplayed_ms: float) -> str:
        """The words of `turn`'s reply that have played: what went out, less `unplayed_ms` not yet heard."""
        return self.timeline.heard(self.out_ms - unplayed_ms) if turn is self.turn else ""


def _block_ms(pcm: bytes) -> float:
    return 1000 * len(pcm) / BYTES_PER_SECOND
