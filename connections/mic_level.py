"""Microphone gain problems, found from the samples: an input that stays silent, or one that clips."""
from __future__ import annotations

from collections import deque

import numpy as np

from utils.audio import SAMPLE_RATE

SILENT_PEAK = 33  # about -60 dBFS: below this a block carries no usable speech
CLIP_PEAK = 32700  # within 0.2 % of full scale


class MicLevelMonitor:
    """Feed int16 blocks with `push`; it returns a warning to log, or None.

    Time is counted in samples, so the monitor needs no clock. Silence is reported once per silent
    stretch of `silent_s`; clipping when `clip_blocks` blocks clip within `clip_window_s`, at most once
    every `repeat_s`.
    """

    def __init__(self, rate: int = SAMPLE_RATE, silent_s: float = 10.0, clip_blocks: int = 3, clip_window_s: float = 3.0,
                 repeat_s: float = 30.0) -> None:
        self.rate = rate
        self.silent_s = silent_s
        self.clip_blocks = clip_blocks
        self.clip_window_s = clip_window_s
        self.repeat_s = repeat_s
        self._now = 0.0  # seconds of audio seen
        self._silent_since: float | None = 0.0
        self._silence_reported = False
        self._clipped_at: deque[float] = deque(maxlen=clip_blocks)
        self._clip_reported_at = float("-inf")

    def push(self, pcm: bytes) -> str | None:
        samples = np.frombuffer(pcm, dtype="<i2")
        if len(samples) == 0:
            return None
        peak = int(np.abs(samples.astype(np.int32)).max())
        self._now += len(samples) / self.rate
        return self._check_silence(peak) or self._check_clipping(peak)

    def _check_silence(self, peak: int) -> str | None:
        if peak >= SILENT_PEAK:
            self._silent_since, self._silence_reported = None, False
            return None
        if self._silent_since is None:
            self._silent_since = self._now
        if self._silence_reported or self._now - self._silent_since < self.silent_s:
            return None
        self._silence_reported = True
        return (f"the microphone has been silent (below -60 dBFS) for {self.silent_s:.0f} s: is it muted or its "
                "input gain too low? (pick another with --input_device; see --list_devices)")

    def _check_clipping(self, peak: int) -> str | None:
        if peak < CLIP_PEAK:
            return None
        self._clipped_at.append(self._now)
        recent = len(self._clipped_at) == self.clip_blocks and self._now - self._clipped_at[0] <= self.clip_window_s
        if not recent or self._now - self._clip_reported_at < self.repeat_s:
            return None
        self._clip_reported_at = self._now
        return "the microphone clips (samples at full scale): lower its input gain, or speech will be misheard"
