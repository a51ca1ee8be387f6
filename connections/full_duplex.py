"""The full-duplex microphone: what the speaker played is taken out of what the microphone hears, so the
assistant can listen while it speaks (barge-in) on plain speakers.

An echo canceller (utils/echo_cancel.py) needs, with each microphone frame, the audio that left the speaker at
that moment (it finds the remaining delay of the echo itself, within a few hundred ms, if the reference comes
first). Callback times jitter by tens of ms (PulseAudio hands audio over in bursts), which a canceller cannot
follow, so both streams are placed on a sample clock instead: sample k of the output sounds at
`out_t0 + k / rate`, sample j of the input was captured at `in_t0 + j / rate`, each t0 taken from the callbacks
that came soonest (a late callback only adds delay). Used by local mode and listen_and_play.py --full_duplex.
"""
from __future__ import annotations

import os  # noqa: E402
import threading
from collections import deque

import numpy as np

from utils.audio import SAMPLE_RATE

_DUMP = {k: open(f"{os.environ['S2S_AEC_DUMP']}.{k}", "wb") for k in ("mic", "ref")} if os.environ.get("S2S_AEC_DUMP") else {}
KEEP_S = 3.0  # reference audio kept: more than any device latency plus the canceller's reach
# How fast a clock estimate follows later callbacks up: slow enough that bursts of late callbacks do not move it
# (at 0.002 the echo slid 40 ms in 10 s in the PulseAudio room), fast enough for clocks that drift apart (~3 ms/min).
CREEP = 0.00005
# Observations are early only as a stream starts (PortAudio fills the device's buffer ahead: in the PulseAudio room
# 3 callbacks at once, then 1.8 s until it played) or before an over/underrun (the device played or lost samples that
# were not counted: 55 in 27 min at 256-sample blocks there, and the echo drifted before its reference until the
# canceller failed). When every observation for REBASE_AFTER_S is later than the estimate by more than REBASE_S, the
# estimate starts again from the soonest of them. A rebase that jitter alone caused errs late by a few ms and is undone
# by the next on-time callback.
REBASE_S = 0.01
REBASE_AFTER_S = 0.5
# The reference is taken early: a canceller finds an echo that comes after its reference (up to ~400 ms), not one
# that comes before it, and the latencies the devices report are only estimates (in the PulseAudio room the echo came
# 50 ms sooner than they said at 512-sample blocks, 16 ms at 256, 3 ms at 160). As early as is known: a microphone
# block is cleaned as it arrives, when the speaker has been handed audio about the two latencies ahead of it.
MAX_REFERENCE_LEAD_S = 0.12
LEAD_MARGIN_S = 0.01


def reference_lead(input_latency_s: float, output_latency_s: float) -> float:
    return max(0.0, min(MAX_REFERENCE_LEAD_S, input_latency_s + output_latency_s - LEAD_MARGIN_S))


class SampleClock:
    """When sample 0 happened, from (time, sample index) observations that are late by a jitter, rarely early."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self._late_since: float | None = None  # all observations since then were late by more than REBASE_S
        self._late_min = 0.0  # the soonest of them

    def observe(self, t: float, index: int) -> float:
        candidate = t - index / SAMPLE_RATE
        if self.t0 is None or candidate < self.t0:
            self.t0 = candidate
        else:
            self.t0 += (candidate - self.t0) * CREEP
        if candidate - self.t0 <= REBASE_S:
            self._late_since = None
        elif self._late_since is None:
            self._late_since, self._late_min = t, candidate
        else:
            self._late_min = min(self._late_min, candidate)
            if t - self._late_since >= REBASE_AFTER_S:
                self.t0, self._late_since = self._late_min, None
        return self.t0


class EchoReference:
    """Every sample the speaker was given, by its index on the output clock. `played` is called on PortAudio's
    output thread for every callback (silence included: it keeps the count); `window` on the microphone's."""

    def __init__(self) -> None:
        self.clock = SampleClock()
        self.written = 0  # samples handed to the device so far
        self._chunks: deque[tuple[int, np.ndarray]] = deque()  # (first sample index, samples) of sound
        self._lock = threading.Lock()

    def played(self, pcm: bytes, frames: int, callback_time: float, output_delay_s: float) -> None:
        """`pcm`: the sound written at the start of this callback's `frames` (the rest was silence)."""
        with self._lock:
            start = self.written
            self.written += frames
            self.clock.observe(callback_time + output_delay_s, start)
            if pcm:
                self._chunks.append((start, np.frombuffer(pcm, dtype="<i2").copy()))
            while self._chunks and self._chunks[0][0] < self.written - KEEP_S * SAMPLE_RATE:
                self._chunks.popleft()

    def window(self, start_time: float, n: int) -> np.ndarray:
        """The `n` samples that sounded from `start_time` on (silence where nothing did)."""
        out = np.zeros(n, dtype="<i2")
        with self._lock:
            if self.clock.t0 is None:
                return out
            first = int(round((start_time - self.clock.t0) * SAMPLE_RATE))
            chunks = list(self._chunks)
        for k0, samples in chunks:
            offset = k0 - first  # where the chunk starts in the window
            if offset >= n or offset + len(samples) <= 0:
                continue
            lo, hi = max(0, offset), min(n, offset + len(samples))
            out[lo:hi] = samples[lo - offset:hi - offset]
        return out


class CleanMicrophone:
    """Microphone blocks in (any size), echo-cancelled audio out, in the canceller's frames (10 ms)."""

    def __init__(self, canceller, reference: EchoReference, input_latency_s: float, output_latency_s: float,
                 frame_ms: int = 10) -> None:
        self.canceller = canceller
        self.reference = reference
        self.input_latency_s = input_latency_s
        self.lead_s = reference_lead(input_latency_s, output_latency_s)
        self.frame = SAMPLE_RATE * frame_ms // 1000
        self.clock = SampleClock()
        self.captured = 0  # samples captured so far
        self._mic = np.zeros(0, dtype="<i2")
        self._ref = np.zeros(0, dtype="<i2")

    def process(self, pcm: bytes, captured_at: float) -> bytes:
        """`captured_at`: the input callback's time (just after the block's last sample was captured); returns
        cleaned bytes, whole frames (the rest waits for the next block)."""
        mic = np.frombuffer(pcm, dtype="<i2")
        start = self.captured
        self.captured += len(mic)
        t0 = self.clock.observe(captured_at - self.input_latency_s, self.captured)
        self._mic = np.concatenate([self._mic, mic])
        window_start = t0 + start / SAMPLE_RATE + self.lead_s  # later samples: the echo comes after them
        self._ref = np.concatenate([self._ref, self.reference.window(window_start, len(mic))])
        if _DUMP:
            _DUMP["mic"].write(mic.tobytes())
            _DUMP["ref"].write(self._ref[len(self._ref) - len(mic):].tobytes())
        whole = len(self._mic) - len(self._mic) % self.frame
        out = [self.canceller.process(self._mic[i:i + self.frame], self._ref[i:i + self.frame])
               for i in range(0, whole, self.frame)]
        self._mic, self._ref = self._mic[whole:], self._ref[whole:]
        return b"".join(np.asarray(o, dtype="<i2").tobytes() for o in out)
