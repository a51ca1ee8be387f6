"""Where reply audio leaves the pipeline: a client's socket (connections/client_session.py, fed by the
ReplyDispatcher) or this machine's speaker (connections/local_audio_streamer.py). Both hand every block on and
record it through one ReplySink, so the turn metrics mean the same in both modes."""

from __future__ import annotations

from typing import Callable

from utils.metrics import TurnMetrics
from utils.pipeline.messages import AudioOut


class ReplySink:
    """`play(pcm)` puts audio on its way to the listener (it may block, or raise on a broken connection)."""

    def __init__(self, play: Callable[[bytes], None], metrics: TurnMetrics) -> None:
        self._play = play
        self._metrics = metrics

    def deliver(self, item: AudioOut) -> None:
        """Play the block, then record it: the first block played is the turn's first audio; the last ends the turn."""
        if item.pcm:
            self._play(item.pcm)
            self._metrics.audio_sent(item.turn)
        if item.last:
            self._metrics.turn_done(item.turn)
