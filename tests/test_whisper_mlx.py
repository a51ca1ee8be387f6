"""STT whisper-mlx (mlx-whisper, on MLX's CPU build here) on tiny random Whisper models built with mlx_whisper's own
classes: loading by path, languages, decoding options, windows, errors."""
import queue
import threading

import numpy as np
import pytest
from mlx_whisper import decoding  # requirements-backends.txt, with mlx[cpu] on Linux

from tests.stt_helpers import AUDIO, built_model, make_stt_handler, segment
from tests.tiny_reference_models import build_mlx_whisper
from utils.errors import ConfigError
from utils.pipeline.messages import END, Conversation, Transcript

model_dir = built_model(build_mlx_whisper, "mlx_whisper")
english_dir = built_model(build_mlx_whisper, "mlx_whisper_en", multilingual=False)


def make_handler(*flags, queue_in=None, queue_out=None):
    return make_stt_handler("--stt", "whisper-mlx", *flags, queue_in=queue_in, queue_out=queue_out)


@pytest.fixture
def decode_calls(monkeypatch):
    """Every decode() call's options, the real decode still running."""
    calls, real = [], decoding.decode
    monkeypatch.setattr(decoding, "decode", lambda model, mel, options: calls.append(options) or real(model, mel, options))
    return calls


def test_loads_by_path_and_transcribes_in_the_given_language(model_dir, decode_calls):
    handler = make_handler("--stt_model_name", model_dir, "--language", "fr", "--stt_gen_max_new_tokens", "5")
    decode_calls.clear()
    [transcript] = list(handler.process(segment()))
    assert isinstance(transcript, Transcript) and transcript.text and transcript.language == "fr"
    [options] = decode_calls
    assert (options.language, options.task, options.sample_len, options.without_timestamps) == ("fr", "transcribe", 5, True)
    assert options.temperature == 0.0 and options.beam_size is None and options.fp16 is False  # float32 on the CPU
    assert "transcript" in transcript.turn.marks


def test_reference_generation_flags_reach_the_decoder(model_dir, decode_calls):
    handler = make_handler("--stt_model_name", model_dir, "--stt_gen_temperature", "0.4", "--stt_gen_num_beams", "1")
    list(handler.process(segment()))
    assert decode_calls[-1].temperature == 0.4


def test_auto_language_keeps_the_last_supported_detection(model_dir, monkeypatch, decode_calls):
    handler = make_handler("--stt_model_name", model_dir, "--language", "auto")
    detections = iter(["de", "ru", "sw", "es"])

    def detect(model, features, tokenizer):
        return None, [{next(detections): 0.9, "en": 0.1}]

    monkeypatch.setattr(decoding, "detect_language", detect)
    decode_calls.clear()
    conversation = Conversation()  # the last good language is this conversation's own
    languages = [next(handler.process(segment(conversation=conversation))).language for _ in range(4)]
    assert languages == ["de", "de", "de", "es"]
    assert [o.language for o in decode_calls] == languages


def test_real_detection_gives_a_supported_language(model_dir):
    from STT.language_choice import SUPPORTED_LANGUAGES

    handler = make_handler("--stt_model_name", model_dir, "--language", "auto")
    assert next(handler.process(segment())).language in SUPPORTED_LANGUAGES


def test_an_utterance_longer_than_30_s_is_read_window_by_window(model_dir, decode_calls):
    handler = make_handler("--stt_model_name", model_dir, "--language", "en", "--stt_gen_max_new_tokens", "3")
    decode_calls.clear()
    transcript = next(handler.process(segment(np.tile(AUDIO, 25))))  # 37.5 s
    assert len(decode_calls) == 2 and transcript.text


def test_an_english_only_model_answers_in_english(english_dir):
    handler = make_handler("--stt_model_name", english_dir, "--language", "auto")
    assert next(handler.process(segment())).language == "en"


@pytest.mark.parametrize("model, flags, message", [
    ("english_dir", ["--language", "fr"], "English-only"),
    ("model_dir", ["--language", "klingon"], "does not know --language 'klingon'"),
    ("model_dir", ["--stt_gen_beam_size", "3"], "no beam search"),
    ("model_dir", ["--stt_gen_num_beams", "2"], "no beam search"),
    ("model_dir", ["--stt_compile_mode", "default"], "applies to --stt whisper only"),
    ("model_dir", ["--stt_torch_dtype", "bfloat16"], "unknown --stt_torch_dtype 'bfloat16'"),
])
def test_impossible_settings_are_one_line(model, flags, message, request):
    with pytest.raises(ConfigError, match=message) as e:
        make_handler("--stt_model_name", request.getfixturevalue(model), *flags)
    assert "\n" not in str(e.value)


def test_a_missing_directory_and_an_unreachable_hub_are_one_line(tmp_path, monkeypatch):
    from utils import hub

    with pytest.raises(ConfigError, match="Whisper MLX model directory not found: /no/such/model"):
        make_handler("--stt_model_name", "/no/such/model")
    with pytest.raises(ConfigError, match="cannot load Whisper MLX model"):
        make_handler("--stt_model_name", str(tmp_path))  # a directory without config.json
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    monkeypatch.setattr(hub, "is_cached", lambda name: False)
    with pytest.raises(ConfigError, match="'mlx-community/whisper-large-v3-turbo' is not a local directory .* unreachable"):
        make_handler()


def test_the_handler_thread_passes_transcripts_then_end(model_dir):
    queue_in, queue_out = queue.Queue(), queue.Queue()
    handler = make_handler("--stt_model_name", model_dir, queue_in=queue_in, queue_out=queue_out)
    thread = threading.Thread(target=handler.run)
    thread.start()
    queue_in.put(segment())
    queue_in.put(END)
    thread.join(60)
    assert isinstance(queue_out.get_nowait(), Transcript) and queue_out.get_nowait() is END
