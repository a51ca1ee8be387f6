import numpy as np

from utils.audio import blocks, trim_silence


def test_trim_silence_keeps_the_sound_and_a_little_air():
    rate = 24000
    sound = np.full(rate // 2, 0.5, dtype=np.float32)
    audio = np.concatenate([np.zeros(rate // 3, np.float32), sound, np.zeros(rate, np.float32)])
    trimmed = trim_silence(audio, rate, keep_lead_s=0.02, keep_trail_s=0.2)
    assert len(trimmed) == int(0.02 * rate) + len(sound) + int(0.2 * rate)
    assert np.array_equal(trimmed[int(0.02 * rate):int(0.02 * rate) + len(sound)], sound)


def test_trim_silence_of_pure_silence_is_empty():
    assert len(trim_silence(np.zeros(1000, np.float32), 16000)) == 0


def test_blocks_are_all_full_size_and_the_last_is_padded():
    out = blocks(np.arange(1000, dtype="<i2"), 512)
    assert [len(b) for b in out] == [1024, 1024]
    assert np.frombuffer(out[1], dtype="<i2")[488:].tolist() == [0] * 24
