"""A streaming state machine: 512-sample windows in, whole utterances out (after silero's VADIterator)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from VAD.silero_onnx import WINDOW

FRAME = 128  # 8 ms: the resolution at which the voice's end is found in the audio itself
# A frame this far below the utterance's loudest is quiet: the voice has stopped (its fading tail, which a listener
# hears as the end, is 20-35 dB down). Replayed offline, the cut came 96 ms after the listener's end at 20 dB, 132 at
# 25, ~155 at 35, with the same transcripts; at 20 more cuts fall in a pause mid-question (44 in 90, against 23),
# withdrawn once the voice goes on.
QUIET_DB = 20.0
QUIET_FLOOR = 10 ** (-65 / 20)  # and any frame below -65 dBFS is quiet, however soft the voice
# Silero's probability stays up for 60-250 ms after the voice stops. Up for longer over quiet audio, it hears
# speech too soft for the level (a voice that trails off far below its loudest): that is the user speaking.
SILERO_DECAY_MS = 300


def frame_levels(window: np.ndarray) -> np.ndarray:
    """RMS of each FRAME of a window."""
    return np.sqrt(np.mean(np.square(window[: len(window) - len(window) % FRAME].reshape(-1, FRAME)), axis=1))


@dataclass
class Utterance:
    audio: np.ndarray  # float32, padded with speech_pad_ms on both sides
    speech_ms: float  # duration of the speech itself, without padding
    skipped: str | None = None  # "too short" / "too long": not to be transcribed
    final: bool = True  # False: a speculative cut after a short silence; the user may go on


class UtteranceDetector:
    """Feed windows with `push`; it returns an `Utterance` when enough silence follows speech.

    `model` is anything with `reset_states()` and `__call__(window) -> probability`.
    Speech starts when the probability reaches `thresh` and ends after `min_silence_ms` below
    `thresh - 0.15` (the same hysteresis as silero's VADIterator).

    The speculative cut comes once `speculative_silence_ms` have passed since the voice's end. Silero's
    probability stays high for ~100 ms after the voice stops; the audio's own level says sooner: the end is the
    last frame within QUIET_DB of the utterance's loudest, and the windows of Silero's decay over quiet audio are
    not speech. Where noise keeps every frame loud, the time below `thresh` counts instead.
    """

    def __init__(self, model, thresh=0.3, sample_rate=16000, min_silence_ms=300, speech_pad_ms=30,
                 min_speech_ms=500, max_speech_ms=float("inf"), speculative_silence_ms=0) -> None:
        self.model = model
        self.thresh = thresh
        self.neg_thresh = max(thresh - 0.15, 0.01)
        per_ms = sample_rate / 1000
        self.min_silence = int(min_silence_ms * per_ms)
        self.speculate = int(speculative_silence_ms * per_ms) if 0 < speculative_silence_ms < min_silence_ms else 0
        self.pad = int(speech_pad_ms * per_ms)
        self.min_speech = min_speech_ms * per_ms
        self.max_speech = max_speech_ms * per_ms
        self.per_ms = per_ms
        self.decay = int(SILERO_DECAY_MS * per_ms)
        self.reset()

    def reset(self) -> None:
        self.model.reset_states()
        self.triggered = False
        self._pre: deque[np.ndarray] = deque(maxlen=max(1, -(-self.pad // WINDOW)))
        self._windows: list[np.ndarray] = []
        self._silence = 0  # samples of silence since the last speech window
        self._speech = 0  # samples from speech start to the last speech window
        self._too_long = False
        self._speculated = False  # a tentative utterance was given for the current pause
        self._below = 0  # samples since the probability was last at `thresh` or above
        self._quiet = 0  # samples since the last loud frame (see QUIET_DB)
        self._voiced = False  # the last window was speech: at `thresh`, and loud (or soft for longer than a decay)
        self._soft = False  # speech heard in quiet audio since the last loud frame: the level cannot say where it ends
        self._peak = 0.0  # the utterance's loudest frame while speech was heard
        self._hold = 0  # samples of silence the current utterance needs to end, when more than min_silence
        self._keep = False  # the current utterance is not skipped as too short
        self._prefix = 0  # samples of earlier audio put before the current utterance (prepend)

    def hold_open(self, ms: float) -> None:
        """The current utterance ends only after `ms` of silence (or min_silence_ms, if longer); 0 undoes it."""
        self._hold = int(ms * self.per_ms)

    def prepend(self, audio: np.ndarray) -> None:
        """Put `audio`, which came just before the current utterance's first window, before it: the utterance starts
        there (a word said before a pause that was not kept on its own, "Sorry, ..." over a reply)."""
        if self.triggered and len(audio):
            self._windows.insert(0, audio.astype(np.float32))
            self._prefix += len(audio)

    @property
    def buffered_samples(self) -> int:
        """Samples of the current utterance's windows, its pre-roll and any prefix included (0 before it starts)."""
        return sum(len(w) for w in self._windows) if self.triggered else 0

    def keep(self) -> None:
        """The current utterance is given however short it is (not skipped as under min_speech_ms)."""
        self._keep = True

    @property
    def hearing_speech(self) -> bool:
        """True right after a speech window: at `thresh` or above and, when the level is tracked, not quiet (the
        windows of silero's slow decay after the voice has stopped are not the user speaking)."""
        return self.triggered and self._voiced

    @property
    def speech_ms(self) -> float:
        """Speech heard so far in the current utterance (0 before it starts)."""
        return self._speech / self.per_ms if self.triggered else 0.0

    @property
    def silence_ms(self) -> float:
        """Time since the voice was last heard (probability at `thresh`), in ms."""
        return self._below / self.per_ms

    @property
    def pause_ms(self) -> float:
        """The pause the speculative cut counts (see `_pause`), in ms, once the probability has fallen below `thresh`
        (0 while it is at `thresh`)."""
        return self._pause() / self.per_ms if self.triggered and self._below else 0.0

    def _pause(self) -> int:
        """Samples since the voice's end: by its level, unless a soft voice was heard in the quiet (then by silero)."""
        return self._below if self._soft else max(self._below, self._quiet)

    def snapshot(self) -> Utterance:
        """The utterance as a speculative cut would give it now (the detector's state is unchanged)."""
        return self._cut(final=False)

    def push(self, window: np.ndarray) -> Utterance | None:
        prob = self.model(window)
        if not self.triggered:
            if prob >= self.thresh:
                self.triggered = True
                self._windows = list(self._pre)
                self._pre_len = sum(len(w) for w in self._windows)
                self._windows.append(window)
                self._speech = WINDOW
                self._silence = self._below = 0
                self._voiced = True
            else:
                self._pre.append(window)
            return None

        if not self._too_long:
            self._windows.append(window)
        self._voiced = prob >= self.thresh
        if self.speculate:  # the only reader of the quiet
            self._track_quiet(window, self._voiced)
            self._soft = self._quiet >= len(window) and (self._soft or (self._voiced and self._quiet >= self.decay))
            self._voiced = self._voiced and (self._quiet < len(window) or self._soft)
        if self._voiced:
            self._speculated = False
        if prob >= self.thresh:
            self._speech += self._silence + WINDOW
            self._silence = self._below = 0
        else:
            self._below += WINDOW
            if prob < self.neg_thresh or self._silence:
                self._silence += WINDOW
            else:
                self._speech += WINDOW
        if self._speech > self.max_speech:
            self._too_long = True
        if self._silence >= max(self.min_silence, self._hold):
            return self._finish()
        # Speculation counts from the voice's end, not from the end of silero's decay and hysteresis: it may start
        # ~150 ms earlier; the final cut, which confirms it, still waits for the hysteresis.
        if self.speculate and not self._voiced and self._pause() >= self.speculate and not self._speculated:
            self._speculated = True
            return self._cut(final=False)
        return None

    def _track_quiet(self, window: np.ndarray, speech: bool) -> None:
        levels = frame_levels(window)
        if speech:
            self._peak = max(self._peak, float(levels.max(initial=0.0)))
        loud = np.flatnonzero(levels > max(self._peak * 10 ** (-QUIET_DB / 20), QUIET_FLOOR))
        self._quiet = (len(levels) - 1 - int(loud[-1])) * FRAME if len(loud) else self._quiet + len(window)

    def _cut(self, final: bool) -> Utterance:
        speech_ms = self._speech / self.per_ms
        short = self._speech < self.min_speech and not self._keep
        skipped = "too long" if self._too_long else ("too short" if short else None)
        audio = np.concatenate(self._windows) if self._windows else np.zeros(0, np.float32)
        keep = 0 if self._prefix else max(0, self._pre_len - self.pad)  # trim pre-roll to the pad
        end = self._prefix + self._pre_len + self._speech + self.pad
        if end > len(audio):  # a speculative cut, ~150 ms after the voice: the rest of the padding, quiet, is still to
            # come. Zeros stand for it: Whisper repeats some questions whose quiet tail is cut that short.
            audio = np.concatenate([audio, np.zeros(end - len(audio), np.float32)])
        return Utterance(audio[keep:end], speech_ms, skipped, final)

    def _finish(self) -> Utterance:
        utterance = self._cut(final=True)
        self.triggered = False
        self._speculated = False
        self._windows, self._pre = [], deque(maxlen=self._pre.maxlen)
        self._silence = self._speech = self._quiet = 0
        self._voiced = self._soft = False
        self._peak = 0.0
        self._hold = 0
        self._keep = False
        self._prefix = 0
        self._too_long = False
        return utterance
