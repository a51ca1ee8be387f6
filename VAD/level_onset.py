"""The first sound of the user's voice over a reply, by the level of the cleaned microphone alone.

While the reply's echo is in the microphone, WebRTC's echo canceller holds the user's voice down too (double talk):
in benchmarks/echo.py Silero heard the user's onset a median 180 ms after it began (68-932), while the level rose
15 dB over the residual's a median 84 ms after it. A rise in level pauses the reply; with the echo gone the
canceller lets the voice through and Silero decides, as for any sound over a reply (VAD/vad_handler.py).
"""
from __future__ import annotations

from collections import deque

import numpy as np

JUMP_DB = 15.0  # a window this far above the median of the recent ones is a new sound
FLOOR_MS = 500  # how much of the reply's recent residual the median covers
MIN_DBFS = -60.0  # and it must be this loud: the canceller's output is near silence between the reply's words
# Heard only once a reply has been under way this long (from the user's turn, which its first sound follows by ~0.4 s):
# before it, the recent level is the quiet room, over which the first of the reply's residual echo would be a rise.
WARMUP_MS = 1000


class LevelOnset:
    """`push(window)` per window of a reply's cleaned microphone: True where the level jumps (see JUMP_DB).
    `reset()` when no reply plays: the floor is the reply's residual, not the user's own voice."""

    def __init__(self, window_ms: float = 32.0) -> None:
        self._levels: deque[float] = deque(maxlen=max(1, int(FLOOR_MS / window_ms)))
        self._warmup = int(WARMUP_MS / window_ms)
        self._pushed = 0

    def reset(self) -> None:
        self._levels.clear()
        self._pushed = 0

    def push(self, window: np.ndarray) -> bool:
        """`window`: float32 samples in [-1, 1]."""
        level = 10 * float(np.log10(max(float(np.mean(np.square(window, dtype=np.float64))), 1e-12)))
        self._pushed += 1
        jump = self._pushed > self._warmup and level > MIN_DBFS and level >= float(np.median(self._levels)) + JUMP_DB
        self._levels.append(level)
        return jump
