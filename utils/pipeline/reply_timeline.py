"""Which words of a reply a listener has heard: the reply's sentences laid out on its audio's time line."""

from __future__ import annotations

from dataclasses import dataclass


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
