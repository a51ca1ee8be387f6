"""The echo canceller wrapper (utils/echo_cancel.py): the chosen backend on a synthetic room, the registry's
fallback when a package is missing, and the frame checks."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from utils.echo_cancel import BACKENDS, DEFAULT_BACKEND, EchoCanceller, load_echo_canceller

RATE = 16000
FRAME = RATE // 100


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise in the voice band, switched on and off at a syllable rate: what a canceller adapts on (float)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 200) | (freqs > 4000)] = 0
    voice = np.fft.irfft(spectrum, n)
    syllables = np.repeat(rng.uniform(0.2, 1.0, n // 2400 + 1) * (rng.random(n // 2400 + 1) > 0.25), 2400)[:n]
    envelope = np.convolve(syllables, np.hanning(400) / np.hanning(400).sum(), "same")
    return voice / np.std(voice) * envelope


def room(rng: np.random.Generator, delay_ms: int = 40) -> np.ndarray:
    """A delay, a direct path and an exponentially decaying tail (RT60 0.3 s)."""
    t = np.arange(int(0.3 * RATE)) / RATE
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / 0.3) * 0.05
    tail[0] += 1.0
    return np.concatenate([np.zeros(delay_ms * RATE // 1000), tail])


def run(aec: EchoCanceller, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
    frame = aec.frame_samples
    out = np.zeros_like(mic)
    for i in range(0, len(mic) - frame + 1, frame):
        out[i : i + frame] = aec.process(mic[i : i + frame], played[i : i + frame])
    return out


def int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.fixture
def chosen():
    pytest.importorskip(BACKENDS[DEFAULT_BACKEND].module)
    return load_echo_canceller(DEFAULT_BACKEND)


@pytest.fixture(scope="module")
def scene():
    """6 s of a reply played (reference) and its echo at the microphone, then 2 s of the user alone."""
    rng = np.random.default_rng(0)
    played = int16(3000 * np.concatenate([speech_like(6, 1), np.zeros(2 * RATE)]))
    echo = np.convolve(played.astype(float), room(rng))[: len(played)] * 0.8
    near = np.concatenate([np.zeros(6 * RATE), 1500 * speech_like(2, 2)])
    hiss = rng.standard_normal(len(played)) * 5
    return played, int16(echo + hiss), int16(near + hiss), int16(echo + near + hiss)


def best_correlation(out: np.ndarray, clean: np.ndarray, max_lag: int = RATE * 30 // 1000) -> float:
    """Correlation of `out` with `clean` at the canceller's own latency (up to 30 ms: WebRTC's output is 8 ms late)."""
    clean = clean.astype(float)
    shifted = [out[lag:].astype(float) for lag in range(max_lag + 1)]
    return max(np.corrcoef(s, clean[: len(s)])[0, 1] for s in shifted)


def erle_db(before: np.ndarray, after: np.ndarray) -> float:
    return 10 * np.log10(np.sum(before.astype(float) ** 2) / max(np.sum(after.astype(float) ** 2), 1.0))


def test_chosen_backend_removes_the_echo(chosen, scene):
    played, echo, _, mic = scene
    out = run(chosen, mic, played)
    converged = slice(3 * RATE, 6 * RATE)  # echo only, after 3 s of adaptation
    assert erle_db(echo[converged], out[converged]) > 20


def test_chosen_backend_passes_the_user_through(chosen, scene):
    played, _, near, mic = scene
    out = run(chosen, mic, played)
    user = slice(6 * RATE + RATE // 4, 8 * RATE)  # the user alone, after the reply's last echo has died away
    assert best_correlation(out[user], near[user]) > 0.8
    assert 0.5 < np.std(out[user]) / np.std(near[user]) < 2  # neither muted nor boosted


def test_chosen_backend_takes_longer_frames(scene):
    pytest.importorskip(BACKENDS[DEFAULT_BACKEND].module)
    aec = load_echo_canceller(DEFAULT_BACKEND, frame_ms=20)
    assert aec is not None and aec.frame_samples == 320
    played, echo, _, mic = scene
    out = run(aec, mic, played)
    assert erle_db(echo[3 * RATE : 6 * RATE], out[3 * RATE : 6 * RATE]) > 20


def test_a_missing_package_gives_none_and_one_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "livekit", None)  # `import livekit` now fails, installed or not
    monkeypatch.setitem(sys.modules, "livekit.rtc", None)
    with caplog.at_level(logging.DEBUG, logger="utils.echo_cancel"):
        assert load_echo_canceller("webrtc") is None
    records = [r for r in caplog.records if r.name == "utils.echo_cancel"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "pip install livekit" in records[0].getMessage() and "half-duplex" in records[0].getMessage()


def test_no_name_is_no_canceller_and_an_unknown_one_is_an_error(caplog):
    with caplog.at_level(logging.DEBUG, logger="utils.echo_cancel"):
        assert load_echo_canceller(None) is None
    assert not caplog.records
    with pytest.raises(ValueError, match="unknown echo canceller 'webrtx'.*webrtc"):
        load_echo_canceller("webrtx")


class Passthrough(EchoCanceller):
    name = "passthrough"

    def _process(self, mic, played):
        return mic


def test_wrong_frames_are_a_clear_value_error():
    aec = Passthrough(16000, 10)
    good = np.zeros(160, np.int16)
    with pytest.raises(ValueError, match="mic has 159 samples.*frames of 160 \\(10 ms at 16000 Hz\\)"):
        aec.process(np.zeros(159, np.int16), good)
    with pytest.raises(ValueError, match="played has 320 samples"):
        aec.process(good, np.zeros(320, np.int16))
    with pytest.raises(ValueError, match="mic must be a 1-D int16 array, not a float32 array"):
        aec.process(np.zeros(160, np.float32), good)
    with pytest.raises(ValueError, match="played must be a 1-D int16 array, not a list"):
        aec.process(good, [0] * 160)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        aec.process(np.zeros((160, 1), np.int16), good)
    assert aec.process(good, good) is not None


def test_frame_sizes_the_library_cannot_take_are_refused_at_once():
    with pytest.raises(ValueError, match="not a whole number of samples"):
        Passthrough(22050, 10)
    with pytest.raises(ValueError, match="positive"):
        Passthrough(16000, 0)

    class TenMs(Passthrough):
        frame_step_ms = 10
        rates = (16000, 48000)

    with pytest.raises(ValueError, match="multiple of 10 ms, not 15 ms"):
        TenMs(16000, 15)
    with pytest.raises(ValueError, match="not 44100"):
        TenMs(44100, 10)
    assert TenMs(48000, 20).frame_samples == 960


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_installed_backend_keeps_the_frame_shape(name):
    pytest.importorskip(BACKENDS[name].module)
    aec = load_echo_canceller(name)
    assert aec is not None
    rng = np.random.default_rng(3)
    for _ in range(5):
        out = aec.process(int16(rng.standard_normal(160) * 1000), int16(rng.standard_normal(160) * 1000))
        assert out.dtype == np.int16 and out.shape == (160,)
