"""Acoustic echo cancellers behind one small interface, for barge-in on plain speakers.

    aec = load_echo_canceller("webrtc")         # None, after one warning line, when its package is missing
    clean = aec.process(mic_frame, played_frame)

A frame is `frame_ms` of 16-bit mono audio at `sample_rate`: what the microphone heard, and what left the speaker
at the same moment (the reference). The canceller learns the path from one to the other (room, speaker, delay)
and returns the microphone's frame without the echo. Feed every frame, also when nothing plays (a zero
reference), so that the canceller's clock stays the microphone's.

Backends (benchmarks/echo.py measures them; "webrtc" was chosen there):
    webrtc      WebRTC AEC3 + high-pass filter, through livekit's audio processing module (Apache-2.0; wheels)
    webrtc-ns   the same, with WebRTC's noise suppressor after it (it also removes residual echo)
    webrtc-apm  WebRTC AEC3 through aec-audio-processing (BSD-3-Clause; builds from source with meson)
    speex       speexdsp's echo canceller + its preprocessor's residual echo suppression, through pyaec (wheels)
    speexdsp    speexdsp's linear echo canceller alone, through speexdsp (BSD; needs libspeexdsp-dev and swig)
    voiceclean  correlation-gated spectral suppression in numpy, through voiceclean (MIT; 30 ms more latency)
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

WEBRTC_RATES = (8000, 16000, 32000, 48000)  # the rates WebRTC's audio processing module runs at
WEBRTC_FRAME_MS = 10  # WebRTC's module takes exactly 10 ms per call
SPEEX_TAIL_MS = 256  # echo path that speex models: the delay plus the room's reverberation that it cancels


class EchoCanceller:
    """One stream's echo canceller: `process(mic, played)` per frame. Subclasses write `_process`."""

    name = ""
    frame_step_ms = 0  # when set, frame_ms must be a multiple of it (the library's own frame)
    rates: tuple[int, ...] = ()  # when set, the only sample rates the library takes

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 10) -> None:
        if self.rates and sample_rate not in self.rates:
            raise ValueError(f"echo canceller '{self.name}' runs at {self.rates} Hz, not {sample_rate}")
        if frame_ms <= 0 or (self.frame_step_ms and frame_ms % self.frame_step_ms):
            step = f"a multiple of {self.frame_step_ms} ms" if self.frame_step_ms else "positive"
            raise ValueError(f"echo canceller '{self.name}' needs frames of {step}, not {frame_ms} ms")
        if sample_rate * frame_ms % 1000:
            raise ValueError(f"{frame_ms} ms at {sample_rate} Hz is not a whole number of samples")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        """The microphone's frame without the echo of `played` (int16, `frame_samples` long, like both inputs)."""
        self._check("mic", mic)
        self._check("played", played)
        return self._process(np.ascontiguousarray(mic), np.ascontiguousarray(played))

    def _check(self, what: str, frame: np.ndarray) -> None:
        if not isinstance(frame, np.ndarray):
            raise ValueError(f"{what} must be a 1-D int16 array, not a {type(frame).__name__}")
        if frame.dtype != np.int16 or frame.ndim != 1:
            raise ValueError(f"{what} must be a 1-D int16 array, not a {frame.dtype} array of shape {frame.shape}")
        if len(frame) != self.frame_samples:
            raise ValueError(
                f"{what} has {len(frame)} samples: echo canceller '{self.name}' takes frames of {self.frame_samples}"
                f" ({self.frame_ms} ms at {self.sample_rate} Hz)"
            )

    def _process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LivekitWebRtc(EchoCanceller):
    """WebRTC's AEC3 in livekit's native core. It finds the echo's delay itself (up to about 400 ms in
    benchmarks/echo.py); its output comes 8 ms after its input (measured: 128 samples at 16 kHz)."""

    name = "webrtc"
    frame_step_ms = WEBRTC_FRAME_MS
    rates = WEBRTC_RATES

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 10, noise_suppression: bool = False) -> None:
        super().__init__(sample_rate, frame_ms)
        from livekit import rtc

        self._frame = rtc.AudioFrame
        self._step = sample_rate * WEBRTC_FRAME_MS // 1000
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True, noise_suppression=noise_suppression, high_pass_filter=True
        )

    def _process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        out = np.empty_like(mic)
        for i in range(0, len(mic), self._step):
            reverse = self._frame(played[i : i + self._step].tobytes(), self.sample_rate, 1, self._step)
            self._apm.process_reverse_stream(reverse)
            capture = self._frame(mic[i : i + self._step].tobytes(), self.sample_rate, 1, self._step)
            self._apm.process_stream(capture)  # in place
            out[i : i + self._step] = np.frombuffer(capture.data, dtype=np.int16)
        return out


class AecAudioProcessing(EchoCanceller):
    """WebRTC's audio processing module (AEC3) through aec-audio-processing's SWIG bindings."""

    name = "webrtc-apm"
    frame_step_ms = WEBRTC_FRAME_MS
    rates = WEBRTC_RATES

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 10) -> None:
        super().__init__(sample_rate, frame_ms)
        from aec_audio_processing import AudioProcessor

        self._step = sample_rate * WEBRTC_FRAME_MS // 1000
        self._apm = AudioProcessor(enable_aec=True, enable_ns=False, enable_agc=False)
        self._apm.set_stream_format(sample_rate, 1)
        self._apm.set_reverse_stream_format(sample_rate, 1)

    def _process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        out = np.empty_like(mic)
        for i in range(0, len(mic), self._step):
            self._apm.process_reverse_stream(played[i : i + self._step].tobytes())
            self._apm.set_stream_delay(0)  # the reference is already aligned to the speaker
            cleaned = self._apm.process_stream(mic[i : i + self._step].tobytes())
            out[i : i + self._step] = np.frombuffer(cleaned, dtype=np.int16)
        return out


class PyAecSpeex(EchoCanceller):
    """speexdsp's frequency-domain adaptive filter, then its preprocessor's residual echo suppressor (pyaec)."""

    name = "speex"

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 10, tail_ms: int = SPEEX_TAIL_MS) -> None:
        super().__init__(sample_rate, frame_ms)
        import pyaec

        self._aec = pyaec.Aec(self.frame_samples, sample_rate * tail_ms // 1000, sample_rate, True)

    def _process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        return np.array(self._aec.cancel_echo(mic, played), dtype=np.int16)


class SpeexDsp(EchoCanceller):
    """speexdsp's linear echo canceller alone (no residual echo suppression), through the speexdsp bindings."""

    name = "speexdsp"

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 10, tail_ms: int = SPEEX_TAIL_MS) -> None:
        super().__init__(sample_rate, frame_ms)
        from speexdsp import EchoCanceller as SpeexEchoCanceller

        self._aec = SpeexEchoCanceller.create(self.frame_samples, sample_rate * tail_ms // 1000, sample_rate)

    def _process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        return np.frombuffer(self._aec.process(mic.tobytes(), played.tobytes()), dtype=np.int16).copy()


class VoiceClean(EchoCanceller):
    """voiceclean's echo suppressor: no adaptive filter; where the microphone's 40 ms correlate with the recent
    reference, the bins the reference dominates are attenuated. Its 40 ms blocks delay the output by 30 ms."""

    name = "voiceclean"
    block_ms = 40

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 10) -> None:
        super().__init__(sample_rate, frame_ms)
        from voiceclean.aec import AEC

        self._aec = AEC(sample_rate=sample_rate, chunk_ms=self.block_ms)
        block = sample_rate * self.block_ms // 1000
        self._pending = np.zeros(max(0, block - self.frame_samples), dtype=np.int16)  # output not yet returned

    def _process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        self._aec.feed_reference(played.tobytes())
        self._pending = np.concatenate([self._pending, np.frombuffer(self._aec.process(mic.tobytes()), np.int16)])
        out, self._pending = self._pending[: self.frame_samples], self._pending[self.frame_samples :]
        return out


@dataclass(frozen=True)
class Backend:
    """A canceller's class, the module it needs and how to install it; `options` are passed to the class."""

    cls: type[EchoCanceller]
    module: str
    install: str
    options: tuple[tuple[str, object], ...] = ()


BACKENDS: dict[str, Backend] = {
    "webrtc": Backend(LivekitWebRtc, "livekit.rtc", "pip install livekit"),
    "webrtc-ns": Backend(LivekitWebRtc, "livekit.rtc", "pip install livekit", (("noise_suppression", True),)),
    "webrtc-apm": Backend(
        AecAudioProcessing,
        "aec_audio_processing",
        "pip install aec-audio-processing (builds WebRTC: needs meson, ninja, swig)",
    ),
    "speex": Backend(PyAecSpeex, "pyaec", "pip install pyaec"),
    "speexdsp": Backend(SpeexDsp, "speexdsp", "apt-get install libspeexdsp-dev swig && pip install speexdsp"),
    "voiceclean": Backend(VoiceClean, "voiceclean.aec", "pip install voiceclean"),
}
DEFAULT_BACKEND = "webrtc"


def load_echo_canceller(name: str | None, sample_rate: int = 16000, frame_ms: int = 10) -> EchoCanceller | None:
    """The canceller called `name`, or None: for no name, and (after one warning) when its package is missing,
    so that the caller stays half-duplex. An unknown name or frame size is a ValueError."""
    if name is None:
        return None
    backend = BACKENDS.get(name)
    if backend is None:
        raise ValueError(f"unknown echo canceller '{name}': choose one of {', '.join(BACKENDS)}")
    try:
        importlib.import_module(backend.module)
    except Exception as e:  # missing, or a native library that does not load: the caller stays half-duplex
        logger.warning("echo canceller '%s' is not installed (%s): %s; staying half-duplex", name, backend.install, e)
        return None
    return backend.cls(sample_rate, frame_ms, **dict(backend.options))
