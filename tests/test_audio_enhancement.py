"""--audio_enhancement: noise reduction of each whole utterance before speech-to-text."""
import os
import queue
import sys
import threading
import types

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from tests.fakes import ScriptedVADModel
from tests.speech import espeak, with_silence
from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError
from utils.pipeline.messages import END, AudioFrame, Conversation, SpeechSegment
from VAD import enhancement
from VAD.enhancement import NoiseReduceEnhancer, load_enhancer
from VAD.vad_handler import VADHandler


def db(a, b):
    return 10 * np.log10(np.mean(np.square(a)) / np.mean(np.square(b)))


def si_snr(clean, x):
    """Scale-invariant SNR: what is left after the best-scaled copy of `clean` is taken out of `x`."""
    scale = np.dot(x, clean) / np.dot(clean, clean)
    return 10 * np.log10(np.sum((scale * clean) ** 2) / np.sum((x - scale * clean) ** 2))


def noisy(clean, level, seed=0):
    return (clean + level * np.random.default_rng(seed).standard_normal(len(clean))).astype(np.float32)


def test_noise_is_reduced_around_a_tone_and_the_tone_kept():
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    tone[:int(0.4 * SAMPLE_RATE)] = tone[-int(0.4 * SAMPLE_RATE):] = 0
    mixed = noisy(tone, 0.03)
    out = NoiseReduceEnhancer()(mixed)
    quiet = tone == 0
    assert out.dtype == np.float32 and len(out) == len(mixed)
    assert db(out[quiet], mixed[quiet]) < -5  # measured -6.1 dB
    assert np.corrcoef(out[~quiet], tone[~quiet])[0, 1] > 0.95  # measured 0.97-0.99


def test_noisy_speech_gets_cleaner():
    speech = with_silence(espeak("What is the weather like today in Paris?"), 0.4, 0.4).astype(np.float32) / 32768
    mixed = noisy(speech, 0.05)
    out = NoiseReduceEnhancer()(mixed)
    quiet = speech == 0
    assert db(out[quiet], mixed[quiet]) < -8  # measured -10.5 dB
    assert si_snr(speech, out) > si_snr(speech, mixed) + 2  # measured 3.9 -> 7.6 dB


def test_too_short_audio_is_left_alone():
    short = noisy(np.zeros(1000, np.float32), 0.1)
    assert NoiseReduceEnhancer()(short) is short


def test_missing_noisereduce_is_one_line_naming_the_package(monkeypatch):
    monkeypatch.setattr(enhancement, "deepfilternet_model_dir", lambda: None)
    monkeypatch.setitem(sys.modules, "noisereduce", None)  # import raises ImportError
    with pytest.raises(ConfigError, match=r"^--audio_enhancement needs a noise reducer: pip install noisereduce$"):
        load_enhancer()


def test_without_deepfilternet_noisereduce_is_used(monkeypatch):
    real_find_spec = enhancement.importlib.util.find_spec
    monkeypatch.setattr(enhancement.importlib.util, "find_spec", lambda name, *a: None if name == "df" else real_find_spec(name, *a))
    assert enhancement.deepfilternet_model_dir() is None
    assert isinstance(load_enhancer(), NoiseReduceEnhancer)


@pytest.fixture
def fake_deepfilternet(tmp_path, monkeypatch):
    """A stand-in `df` package with DeepFilterNet's interface (48 kHz, halves the signal) and weights on disk."""
    model_dir = tmp_path / "cache" / "DeepFilterNet3"
    model_dir.mkdir(parents=True)
    (model_dir / "config.ini").write_text("[df]\nsr = 48000\n")
    calls = []

    def init_df(path, log_level, log_file):
        calls.append(("init", path))
        return "model", types.SimpleNamespace(sr=lambda: 48000), "suffix"

    def enhance(model, state, audio):
        calls.append(("enhance", tuple(audio.shape)))
        return audio * 0.5

    package = types.ModuleType("df")
    package.__path__ = []
    utils = types.ModuleType("df.utils")
    utils.get_cache_dir = lambda: str(tmp_path / "cache")
    enhance_module = types.ModuleType("df.enhance")
    enhance_module.init_df, enhance_module.enhance = init_df, enhance
    for name, module in (("df", package), ("df.utils", utils), ("df.enhance", enhance_module)):
        module.__spec__ = types.SimpleNamespace(name=name, submodule_search_locations=[])
        monkeypatch.setitem(sys.modules, name, module)
    return str(model_dir), calls


def test_deepfilternet_is_preferred_when_its_weights_are_there(fake_deepfilternet):
    model_dir, calls = fake_deepfilternet
    enhancer = load_enhancer()
    assert enhancer.name == "DeepFilterNet" and calls == [("init", model_dir)]
    audio = (0.4 * np.sin(2 * np.pi * 300 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    out = enhancer(audio)
    assert calls[1] == ("enhance", (1, 3 * SAMPLE_RATE))  # resampled to 48 kHz, batch of one
    assert len(out) == len(audio) and out.dtype == np.float32
    assert abs(db(out[1000:-1000], audio[1000:-1000]) + 6.0) < 0.3  # the fake's halving, back at 16 kHz


def test_deepfilternet_without_its_weights_on_disk_is_not_used(fake_deepfilternet):
    """Its package would download them on first use, which fails offline."""
    model_dir, calls = fake_deepfilternet
    os.remove(os.path.join(model_dir, "config.ini"))
    assert enhancement.deepfilternet_model_dir() is None
    assert isinstance(load_enhancer(), NoiseReduceEnhancer) and calls == []


def test_a_broken_deepfilternet_falls_back_to_noisereduce(fake_deepfilternet):
    sys.modules["df.enhance"].init_df = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no libdf"))
    assert isinstance(load_enhancer(), NoiseReduceEnhancer)


class ThresholdVAD(ScriptedVADModel):
    """Loud windows are speech; `fresh()` for a VAD that keeps one model state per conversation."""

    def fresh(self):
        return ThresholdVAD(self.level)


def vad_segment(pcm: bytes, *flags) -> SpeechSegment:
    stop, q_in, q_out = threading.Event(), queue.Queue(), queue.Queue()
    kwargs = {"config": parse_arguments(list(flags)).vad, "model": ThresholdVAD(level=0.15)}
    handler = VADHandler(stop, q_in, q_out, setup_kwargs=kwargs)
    q_in.put(AudioFrame(pcm, Conversation()))
    q_in.put(END)
    handler.run()
    return q_out.get_nowait()


def out_of_band(audio: np.ndarray, tone_hz: float = 300, width_hz: float = 60) -> float:
    """Energy away from the tone: the noise."""
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    return float(spectrum[np.abs(freqs - tone_hz) > width_hz].sum())


def test_the_vad_enhances_the_whole_utterance():
    clean = np.concatenate([np.zeros(SAMPLE_RATE // 2), 0.3 * np.sin(2 * np.pi * 300 * np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE),
                            np.zeros(SAMPLE_RATE // 2)])
    pcm = (np.clip(noisy(clean, 0.02), -1, 1) * 32767).astype("<i2").tobytes()
    plain, enhanced = vad_segment(pcm), vad_segment(pcm, "--audio_enhancement")
    assert len(plain.audio) == len(enhanced.audio) > SAMPLE_RATE
    half = len(plain.audio) // 2
    for part in (slice(0, half), slice(half, None)):  # both halves, not only the last chunk
        assert 10 * np.log10(out_of_band(enhanced.audio[part]) / out_of_band(plain.audio[part])) < -3
