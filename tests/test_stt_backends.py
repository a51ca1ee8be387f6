"""The transformers STT backends (whisper, moonshine) on tiny random models loaded by path: what can be asserted
without trained weights (it runs, plumbing of language, generation options, END, errors)."""
import math
import os
import queue
import subprocess
import sys
import threading

import pytest
import torch

from arguments_classes.parsing import parse_arguments
from STT import BACKENDS
from STT.language_choice import SUPPORTED_LANGUAGES, LanguageChooser
from tests.conftest import ROOT, ServerProcess, free_port
from tests.stt_helpers import AUDIO, built_model, make_stt_handler, segment
from tests.tiny_stt_models import build_moonshine, build_whisper
from utils import torch_compile
from utils.errors import ConfigError
from utils.pipeline.messages import END, Conversation, Transcript

whisper_dir = built_model(build_whisper, "whisper")
whisper_en_dir = built_model(build_whisper, "whisper_en", multilingual=False)
moonshine_dir = built_model(build_moonshine, "moonshine")


def stt_config(*flags):
    backend, config = parse_arguments(list(flags)).stt
    return backend, config


make_handler = make_stt_handler


class GenerateSpy:
    """Wraps model.generate: records its keyword arguments and what it returned."""

    def __init__(self, model):
        self.generate = model.generate
        self.calls = []
        model.generate = self

    def __call__(self, *args, **kwargs):
        out = self.generate(*args, **kwargs)
        self.calls.append((kwargs, out))
        return out


# --- whisper -------------------------------------------------------------------------------------------

def test_whisper_loads_by_path_and_transcribes_in_the_given_language(whisper_dir):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--language", "fr")
    spy = GenerateSpy(handler.model)
    [transcript] = list(handler.process(segment()))
    assert isinstance(transcript, Transcript) and isinstance(transcript.text, str) and transcript.text
    assert transcript.language == "fr"
    assert spy.calls[0][0]["language"] == "fr" and spy.calls[0][0]["task"] == "transcribe"
    assert "transcript" in transcript.turn.marks


def test_whisper_gen_options_reach_generate(whisper_dir):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir,
                           "--stt_gen_beam_size", "2", "--stt_gen_max_new_tokens", "5")
    spy = GenerateSpy(handler.model)
    list(handler.process(segment()))
    kwargs, ids = spy.calls[0]
    assert kwargs["num_beams"] == 2 and kwargs["max_new_tokens"] == 5
    assert "beam_size" not in kwargs and "temperature" not in kwargs and "do_sample" not in kwargs
    assert ids.shape[-1] <= 5


def test_a_temperature_turns_on_sampling(whisper_dir):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--stt_gen_temperature", "0.7")
    assert handler.gen_kwargs["do_sample"] is True and handler.gen_kwargs["temperature"] == 0.7


def test_max_new_tokens_is_capped_to_the_decoder_length(whisper_dir):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--stt_gen_max_new_tokens", "1000")
    assert handler.gen_kwargs["max_new_tokens"] == handler.model.config.max_target_positions - 4
    assert list(handler.process(segment()))  # and generate accepts it


def test_auto_language_travels_with_the_transcript(whisper_dir):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--language", "auto")
    spy = GenerateSpy(handler.model)
    [transcript] = list(handler.process(segment()))
    # random weights detect anything: a supported language travels, anything else becomes the last good one (en)
    assert transcript.language in SUPPORTED_LANGUAGES
    assert spy.calls[0][0]["language"] == transcript.language


def test_unsupported_detection_is_transcribed_in_the_last_good_language(whisper_dir, monkeypatch):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--language", "auto")
    lang_to_id = handler.model.generation_config.lang_to_id
    detections = iter(["<|de|>", "<|ru|>", "<|sw|>", "<|es|>"])
    monkeypatch.setattr(handler.model, "detect_language",
                        lambda encoder_outputs: torch.tensor([lang_to_id[next(detections)]]))
    spy = GenerateSpy(handler.model)
    conversation = Conversation()  # the last good language is the conversation's own
    languages = [next(handler.process(segment(conversation=conversation))).language for _ in range(3)]
    detections = iter(["<|ru|>"])
    other = next(handler.process(segment(conversation=Conversation()))).language  # another user: not German
    detections = iter(["<|es|>"])
    languages.append(next(handler.process(segment(conversation=conversation))).language)
    assert languages == ["de", "de", "de", "es"] and other == "en"
    assert [kwargs["language"] for kwargs, _ in spy.calls] == ["de", "de", "de", "en", "es"]


def test_auto_before_any_supported_detection_falls_back_to_english(whisper_dir, monkeypatch):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--language", "auto")
    monkeypatch.setattr(handler, "detect_language", lambda encoder_outputs: "ru")
    assert next(handler.process(segment())).language == "en"


def test_language_chooser_keeps_the_last_supported_language():
    chooser = LanguageChooser(supported=("en", "fr"), first="en")
    assert [chooser.choose(d) for d in ("xx", "fr", "yy", "en", "zz")] == ["en", "fr", "fr", "en", "en"]
    chooser.reset()
    assert chooser.choose("yy") == "en"


def test_an_english_only_whisper_answers_in_english(whisper_en_dir):
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_en_dir, "--language", "auto")
    spy = GenerateSpy(handler.model)
    assert next(handler.process(segment())).language == "en"
    assert "language" not in spy.calls[0][0]  # English-only generation refuses a language argument


@pytest.mark.parametrize("model, language, message", [
    ("whisper_en_dir", "fr", "English-only"),
    ("whisper_dir", "klingon", "does not know --language 'klingon'"),
])
def test_impossible_languages_are_config_errors(model, language, message, request):
    with pytest.raises(ConfigError, match=message):
        make_handler("--stt", "whisper", "--stt_model_name", request.getfixturevalue(model), "--language", language)


def test_compile_mode_compiles_forward_with_a_static_cache(whisper_dir, monkeypatch):
    compiled = []

    def fake_compile(fn, **kwargs):  # the real compile takes ~35 s on this tiny model; measured by hand
        compiled.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "restored after the test")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, "--language", "auto",
                           "--stt_compile_mode", "reduce-overhead")
    assert compiled == [{"mode": "reduce-overhead", "fullgraph": True}]
    assert handler.model.generation_config.cache_implementation == "static"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == os.path.join(str(ROOT), "cache", "torchinductor")
    assert next(handler.process(segment())).text  # the static-cache path runs (eagerly here)


def test_a_chosen_compile_cache_directory_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert torch_compile.use_repo_compile_cache() == str(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()


def test_an_empty_transcript_drops_the_turn(whisper_dir, monkeypatch):
    dropped = []
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, dropped=dropped.append)
    eos = handler.model.generation_config.eos_token_id
    monkeypatch.setattr(handler.model, "generate", lambda *a, **k: torch.tensor([[eos]]))
    item = segment()
    assert list(handler.process(item)) == []
    assert dropped == [item]


def test_the_handler_thread_passes_transcripts_then_end(whisper_dir):
    queue_in, queue_out = queue.Queue(), queue.Queue()
    handler = make_handler("--stt", "whisper", "--stt_model_name", whisper_dir, queue_in=queue_in, queue_out=queue_out)
    thread = threading.Thread(target=handler.run)
    thread.start()
    queue_in.put(segment())
    queue_in.put(END)
    thread.join(60)
    assert not thread.is_alive()
    first, second = queue_out.get_nowait(), queue_out.get_nowait()
    assert isinstance(first, Transcript) and second is END


def test_a_missing_model_directory_is_one_clear_error():
    with pytest.raises(ConfigError, match="Whisper model directory not found: /no/such/whisper"):
        make_handler("--stt", "whisper", "--stt_model_name", "/no/such/whisper")


def test_a_directory_without_a_model_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot load Whisper model"):
        make_handler("--stt", "whisper", "--stt_model_name", str(tmp_path))


# --- moonshine -----------------------------------------------------------------------------------------

def test_moonshine_loads_by_path_and_caps_tokens_by_the_audio_length(moonshine_dir):
    handler = make_handler("--stt", "moonshine", "--stt_model_name", moonshine_dir, "--stt_gen_beam_size", "2")
    spy = GenerateSpy(handler.model)
    [transcript] = list(handler.process(segment()))
    assert isinstance(transcript.text, str) and transcript.text and transcript.language == "en"
    kwargs, ids = spy.calls[0]
    limit = math.ceil(len(AUDIO) / 16000 * 6.5)
    assert kwargs["max_new_tokens"] == limit and kwargs["num_beams"] == 2
    assert ids.shape[-1] <= limit + 1  # + the decoder start token


def test_moonshine_keeps_a_smaller_max_new_tokens(moonshine_dir):
    handler = make_handler("--stt", "moonshine", "--stt_model_name", moonshine_dir, "--stt_gen_max_new_tokens", "3")
    spy = GenerateSpy(handler.model)
    list(handler.process(segment()))
    assert spy.calls[0][0]["max_new_tokens"] == 3


@pytest.mark.parametrize("flags, message", [
    (["--language", "fr"], "moonshine transcribes English only"),
    (["--stt_compile_mode", "default"], "applies to --stt whisper only"),
])
def test_moonshine_rejects_what_it_cannot_do(moonshine_dir, flags, message):
    with pytest.raises(ConfigError, match=message):
        make_handler("--stt", "moonshine", "--stt_model_name", moonshine_dir, *flags)


def test_moonshine_from_an_unreachable_hub_is_one_line_at_once(monkeypatch):
    from utils import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    with pytest.raises(ConfigError, match="'UsefulSensors/moonshine-base' is not a local directory nor in the Hugging "
                                          "Face cache, and the hub is unreachable: pass --stt_model_name"):
        make_handler("--stt", "moonshine")


def test_a_cached_hub_model_is_read_offline(monkeypatch):
    from utils import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    monkeypatch.setattr(hub, "is_cached", lambda name: True)
    assert hub.locate_pretrained("org/model", "X", "--flag") == {"pretrained_model_name_or_path": "org/model",
                                                                  "local_files_only": True}


# --- the command line ----------------------------------------------------------------------------------

def test_the_shared_flags_reach_every_stt_backend():
    for name in ("faster-whisper", "whisper", "moonshine"):
        backend, config = stt_config("--stt", name, "--stt_model_name", "m", "--stt_device", "cuda", "--language", "de",
                                     "--stt_gen_beam_size", "3")
        assert backend.name == name
        assert (config.model_name, config.device, config.language) == ("m", "cuda", "de")
        assert config.gen_kwargs["beam_size"] == 3


def test_the_pipeline_starts_with_whisper_from_a_directory(whisper_dir):
    server = ServerProcess("--stt", "whisper", "--stt_model_name", whisper_dir)
    assert any("WhisperSTTHandler ready" in line for line in server.stderr)
    assert server.stop() == 0


def test_moonshine_without_a_model_is_one_line_and_exit_2():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # as on a machine without the hub, wherever the test runs
    result = subprocess.run([sys.executable, "s2s_pipeline.py", "--stt", "moonshine", "--recv_port", str(free_port()),
                             "--send_port", str(free_port())],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    errors = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert errors == ["error: Moonshine model 'UsefulSensors/moonshine-base' is not a local directory nor in the Hugging "
                      "Face cache, and the hub is unreachable: pass --stt_model_name <model directory>"]


@pytest.mark.parametrize("backend, package, install", [
    ("whisper-mlx", "mlx_whisper", "pip install mlx-whisper"),
    ("paraformer", "funasr", "pip install funasr"),
])
def test_without_its_package_a_backend_says_what_to_install(monkeypatch, backend, package, install):
    monkeypatch.setitem(sys.modules, package, None)  # its import raises ImportError
    monkeypatch.delitem(sys.modules, BACKENDS[backend].handler.split(":")[0], raising=False)
    with pytest.raises(ConfigError) as e:
        BACKENDS[backend].load_handler()
    assert install in str(e.value) and "\n" not in str(e.value)
