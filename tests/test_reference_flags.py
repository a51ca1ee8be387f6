"""The reference speech-to-speech project's configuration language: every one of its setting names is accepted on the
command line and in JSON, reaches the setting it means here, loses to our own flag, or says it has no effect."""
import dataclasses
import json
import logging
import sys

import pytest

from arguments_classes import parsing
from arguments_classes.parsing import MAC_SETTINGS, parse_arguments
from arguments_classes.reference_names import REFERENCE_NAMES
from utils.errors import ConfigError

# The list of the reference's 41 setting names that were not accepted, verbatim.
MISSING = """chat_tts_chunk_size chat_tts_device chat_tts_stream facebook_mms_device facebook_mms_torch_dtype
  faster_whisper_stt_compute_type faster_whisper_stt_device faster_whisper_stt_gen_beam_size
  faster_whisper_stt_gen_language faster_whisper_stt_gen_max_new_tokens
  faster_whisper_stt_gen_return_timestamps faster_whisper_stt_gen_task faster_whisper_stt_model_name
  lm_gen_do_sample lm_gen_max_new_tokens lm_gen_min_new_tokens melo_device melo_language
  melo_speaker_to_id mlx_lm_chat_size mlx_lm_device mlx_lm_gen_do_sample mlx_lm_gen_max_new_tokens
  mlx_lm_gen_temperature mlx_lm_init_chat_prompt mlx_lm_init_chat_role mlx_lm_model_name
  mlx_lm_torch_dtype mlx_lm_user_role model_name open_api_chat_size open_api_init_chat_prompt
  open_api_init_chat_role open_api_stream open_api_user_role paraformer_stt_device
  paraformer_stt_model_name stt_gen_num_beams stt_gen_return_timestamps stt_gen_task user_role""".split()

# The reference's other 46 names, which are ours too, with the reference's defaults.
SHARED = {
    "device": None, "mode": "socket", "local_mac_optimal_settings": False, "stt": "whisper", "llm": "transformers",
    "tts": "parler", "log_level": "info", "recv_host": "localhost", "recv_port": 12345, "chunk_size": 1024,
    "send_host": "localhost", "send_port": 12346, "thresh": 0.3, "sample_rate": 16000, "min_silence_ms": 250,
    "min_speech_ms": 500, "max_speech_ms": float("inf"), "speech_pad_ms": 250, "audio_enhancement": False,
    "stt_model_name": "distil-whisper/distil-large-v3", "stt_device": "cuda", "stt_torch_dtype": "float16",
    "stt_compile_mode": None, "stt_gen_max_new_tokens": 128, "language": "en",
    "lm_model_name": "HuggingFaceTB/SmolLM-360M-Instruct", "lm_device": "cuda", "lm_torch_dtype": "float16",
    "init_chat_role": "system", "init_chat_prompt": "You are a helpful AI assistant.", "lm_gen_temperature": 0.0,
    "chat_size": 2, "open_api_model_name": "deepseek-chat", "open_api_api_key": None,
    "open_api_base_url": "https://api.deepseek.com", "tts_model_name": "ylacombe/parler-tts-mini-jenny-30H", "tts_device": "cuda",
    "tts_torch_dtype": "float16", "tts_compile_mode": None, "tts_gen_min_new_tokens": 64,
    "tts_gen_max_new_tokens": 512, "description": "A female speaker...", "play_steps_s": 1.0,
    "max_prompt_pad_length": 8, "use_default_speakers_list": False, "tts_language": "en",
}
REFERENCE_VALUES = {
    "chat_tts_chunk_size": 512, "chat_tts_device": "cuda", "chat_tts_stream": True, "facebook_mms_device": "cuda",
    "facebook_mms_torch_dtype": "float32", "faster_whisper_stt_compute_type": "float16",
    "faster_whisper_stt_device": "cuda", "faster_whisper_stt_gen_beam_size": 1, "faster_whisper_stt_gen_language": "en",
    "faster_whisper_stt_gen_max_new_tokens": 128, "faster_whisper_stt_gen_return_timestamps": False,
    "faster_whisper_stt_gen_task": "transcribe", "faster_whisper_stt_model_name": "tiny.en", "lm_gen_do_sample": False,
    "lm_gen_max_new_tokens": 128, "lm_gen_min_new_tokens": 0, "melo_device": "auto", "melo_language": "en",
    "melo_speaker_to_id": "en", "mlx_lm_chat_size": 2, "mlx_lm_device": "mps", "mlx_lm_gen_do_sample": False,
    "mlx_lm_gen_max_new_tokens": 128, "mlx_lm_gen_temperature": 0.0, "mlx_lm_init_chat_prompt": "You are helpful.",
    "mlx_lm_init_chat_role": "system", "mlx_lm_model_name": "mlx-community/SmolLM-360M-Instruct",
    "mlx_lm_torch_dtype": "float16", "mlx_lm_user_role": "user", "model_name": "HuggingFaceTB/SmolLM-360M-Instruct",
    "open_api_chat_size": 2, "open_api_init_chat_prompt": "You are helpful.", "open_api_init_chat_role": "system",
    "open_api_stream": False, "open_api_user_role": "user", "paraformer_stt_device": "cuda",
    "paraformer_stt_model_name": "paraformer-zh", "stt_gen_num_beams": 1, "stt_gen_return_timestamps": False,
    "stt_gen_task": "transcribe", "user_role": "user",
}


def write_config(tmp_path, settings) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(settings))
    return str(path)


def no_effect_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_every_reference_name_is_accepted():
    assert len(MISSING) == 41 and len(SHARED) == 46 and set(REFERENCE_VALUES) == set(MISSING)
    known = {f.name for cls in parsing.argument_classes() for f in dataclasses.fields(cls)}
    assert set(MISSING) - known == set() and set(SHARED) - known == set()


def test_a_json_preset_with_all_87_reference_names_loads(tmp_path):
    config = parse_arguments([write_config(tmp_path, {**SHARED, **REFERENCE_VALUES})])
    assert (config.stt[0].name, config.llm[0].name, config.tts[0].name) == ("whisper", "transformers", "parler")
    assert config.llm[1].gen_kwargs["max_tokens"] == 128  # lm_gen_max_new_tokens
    assert config.llm[1].model_name == "HuggingFaceTB/SmolLM-360M-Instruct"


# reference flag, value, backend flags, stage, field of that stage's config ("gen:<key>" for gen_kwargs), expected
MAPPED = [
    ("stt_gen_num_beams", "3", [], "stt", "gen:beam_size", 3),
    ("faster_whisper_stt_model_name", "/models/fw", [], "stt", "model_name", "/models/fw"),
    ("faster_whisper_stt_device", "cuda", [], "stt", "device", "cuda"),
    ("faster_whisper_stt_compute_type", "float32", [], "stt", "compute_type", "float32"),
    ("faster_whisper_stt_gen_beam_size", "4", [], "stt", "gen:beam_size", 4),
    ("faster_whisper_stt_gen_language", "fr", [], "stt", "language", "fr"),
    ("paraformer_stt_model_name", "/models/p", ["--stt", "paraformer"], "stt", "model_name", "/models/p"),
    ("paraformer_stt_device", "cuda", ["--stt", "paraformer"], "stt", "device", "cuda"),
    ("model_name", "my-model", [], "llm", "model_name", "my-model"),
    ("lm_gen_max_new_tokens", "128", [], "llm", "gen:max_tokens", 128),
    ("lm_gen_min_new_tokens", "5", ["--llm", "transformers"], "llm", "gen:min_new_tokens", 5),
    ("mlx_lm_model_name", "mlx-community/x", ["--llm", "mlx-lm"], "llm", "model_name", "mlx-community/x"),
    ("mlx_lm_init_chat_role", "developer", ["--llm", "mlx-lm"], "llm", "init_chat_role", "developer"),
    ("mlx_lm_init_chat_prompt", "Be brief.", ["--llm", "mlx-lm"], "llm", "init_chat_prompt", "Be brief."),
    ("mlx_lm_gen_max_new_tokens", "64", ["--llm", "mlx-lm"], "llm", "gen:max_tokens", 64),
    ("mlx_lm_gen_temperature", "0.5", ["--llm", "mlx-lm"], "llm", "gen:temperature", 0.5),
    ("mlx_lm_chat_size", "5", ["--llm", "mlx-lm"], "llm", "chat_size", 5),
    ("open_api_chat_size", "6", ["--llm", "open_api"], "llm", "chat_size", 6),
    ("open_api_init_chat_prompt", "Be kind.", ["--llm", "open_api"], "llm", "init_chat_prompt", "Be kind."),
    ("open_api_init_chat_role", "developer", ["--llm", "open_api"], "llm", "init_chat_role", "developer"),
    ("melo_device", "cuda", ["--tts", "melo"], "tts", "device", "cuda"),
    ("melo_language", "fr", ["--tts", "melo"], "tts", "language", "fr"),
    ("chat_tts_chunk_size", "256", ["--tts", "chatTTS"], "tts", "blocksize", 256),
    ("chat_tts_device", "cuda", ["--tts", "chatTTS"], "tts", "device", "cuda"),
    ("chat_tts_stream", "false", ["--tts", "chatTTS"], "tts", "stream", False),
    ("facebook_mms_device", "cuda", ["--tts", "facebookMMS"], "tts", "device", "cuda"),
    ("facebook_mms_torch_dtype", "float16", ["--tts", "facebookMMS"], "tts", "torch_dtype", "float16"),
]


def setting(config, stage, name):
    component = getattr(config, stage)[1]
    return component.gen_kwargs[name[4:]] if name.startswith("gen:") else getattr(component, name)


@pytest.mark.parametrize("name, value, backend, stage, field_name, expected", MAPPED, ids=[m[0] for m in MAPPED])
def test_each_mapped_reference_flag_reaches_its_setting(name, value, backend, stage, field_name, expected, tmp_path, caplog):
    default = setting(parse_arguments(backend), stage, field_name)
    assert default != expected  # the test would prove nothing otherwise
    with caplog.at_level(logging.WARNING):
        from_flags = parse_arguments([*backend, f"--{name}", value])
    assert setting(from_flags, stage, field_name) == expected
    assert no_effect_lines(caplog) == []
    backend_keys = {flag[2:]: value for flag, value in zip(backend[::2], backend[1::2])}
    from_json = parse_arguments([write_config(tmp_path, {**backend_keys, name: expected})])
    assert setting(from_json, stage, field_name) == expected


def test_every_reference_name_is_mapped_or_said_to_have_no_effect():
    mapped = {m[0] for m in MAPPED}
    for name, ref in REFERENCE_NAMES.items():
        assert (name in mapped) == (ref.ours is not None), name
        assert ref.ours is not None or ref.why, name  # a name with nothing to set says why


# reference flag, a value that asks for what happens here anyway, one that cannot be honoured, backend flags
NO_EFFECT = [
    ("stt_gen_return_timestamps", "false", "true", []),
    ("stt_gen_task", "transcribe", "translate", []),
    ("faster_whisper_stt_gen_return_timestamps", "false", "true", []),
    ("faster_whisper_stt_gen_task", "transcribe", "translate", []),
    ("faster_whisper_stt_gen_max_new_tokens", None, "64", []),
    ("user_role", "user", "assistant", []),
    ("lm_gen_do_sample", "false", "true", []),  # at the default temperature 0
    ("mlx_lm_user_role", "user", "assistant", ["--llm", "mlx-lm"]),
    ("mlx_lm_gen_do_sample", "false", "true", ["--llm", "mlx-lm"]),
    ("mlx_lm_device", None, "mps", ["--llm", "mlx-lm"]),
    ("mlx_lm_torch_dtype", None, "float16", ["--llm", "mlx-lm"]),
    ("open_api_user_role", "user", "assistant", ["--llm", "open_api"]),
    ("open_api_stream", "true", "false", ["--llm", "open_api"]),
    ("melo_speaker_to_id", None, "EN-BR", ["--tts", "melo"]),
]


@pytest.mark.parametrize("name, agreeing, other, backend", NO_EFFECT, ids=[n[0] for n in NO_EFFECT])
def test_reference_flags_with_nothing_to_set_warn_unless_they_ask_for_what_happens_anyway(name, agreeing, other, backend, caplog):
    if agreeing is not None:
        with caplog.at_level(logging.WARNING):
            parse_arguments([*backend, f"--{name}", agreeing])
        assert no_effect_lines(caplog) == []
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        parse_arguments([*backend, f"--{name}", other])
    [line] = no_effect_lines(caplog)
    assert line.startswith("no effect with the chosen backends: ") and f"--{name}" in line and other in line


def test_do_sample_agrees_with_a_temperature_above_zero(caplog):
    with caplog.at_level(logging.WARNING):
        parse_arguments(["--lm_gen_do_sample", "true", "--lm_gen_temperature", "0.7"])
        parse_arguments(["--llm", "mlx-lm", "--mlx_lm_gen_do_sample", "true", "--mlx_lm_gen_temperature", "0.7"])
    assert no_effect_lines(caplog) == []


def test_a_per_backend_flag_applies_only_to_its_backend(caplog):
    with caplog.at_level(logging.WARNING):
        config = parse_arguments(["--mlx_lm_model_name", "mlx-community/x", "--open_api_chat_size", "9"])
    assert config.llm[1].model_name is None and config.llm[1].chat_size == 1  # llama-cpp chosen: not applied (default 1)
    [line] = no_effect_lines(caplog)
    assert "--mlx_lm_model_name (for --llm mlx-lm; chosen: llama-cpp)" in line
    assert "--open_api_chat_size (for --llm open_api; chosen: llama-cpp)" in line


def test_our_flag_wins_over_the_reference_one_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        config = parse_arguments(["--lm_gen_max_new_tokens", "128", "--lm_gen_max_tokens", "32"])
    assert config.llm[1].gen_kwargs["max_tokens"] == 32
    assert no_effect_lines(caplog) == [
        "--lm_gen_max_tokens 32 and --lm_gen_max_new_tokens 128 both given: using --lm_gen_max_tokens"]


def test_our_key_wins_in_json_too(tmp_path, caplog):
    path = write_config(tmp_path, {"stt_gen_num_beams": 4, "stt_gen_beam_size": 2})
    with caplog.at_level(logging.WARNING):
        assert parse_arguments([path]).stt[1].gen_kwargs["beam_size"] == 2
    assert no_effect_lines(caplog) == ['"stt_gen_beam_size" 2 and "stt_gen_num_beams" 4 both given: using "stt_gen_beam_size"']


def test_the_same_value_twice_is_no_conflict(caplog):
    with caplog.at_level(logging.WARNING):
        parse_arguments(["--lm_gen_max_new_tokens", "64", "--lm_gen_max_tokens", "64"])
    assert no_effect_lines(caplog) == []


def test_a_per_backend_name_wins_over_a_stage_wide_one(caplog):
    with caplog.at_level(logging.WARNING):
        config = parse_arguments(["--llm", "mlx-lm", "--lm_gen_max_new_tokens", "128", "--mlx_lm_gen_max_new_tokens", "64"])
    assert config.llm[1].gen_kwargs["max_tokens"] == 64
    [line] = no_effect_lines(caplog)
    assert "--mlx_lm_gen_max_new_tokens 64 and --lm_gen_max_new_tokens 128 both given" in line


def test_a_mapped_device_is_the_component_own_and_beats_the_global_one():
    config = parse_arguments(["--device", "cuda", "--faster_whisper_stt_device", "cpu"])
    assert config.stt[1].device == "cpu" and config.llm[1].device == "cuda"


def test_our_settings_that_the_chosen_backend_does_not_read_are_named(caplog):
    with caplog.at_level(logging.WARNING):
        parse_arguments(["--llm", "transformers", "--lm_n_ctx", "4096", "--tts_speed", "1.5"])
    [line] = no_effect_lines(caplog)
    assert "--lm_n_ctx (not read by --llm transformers)" in line and "tts_speed" not in line


def test_shared_tts_settings_the_chosen_voice_ignores_are_named(caplog):
    with caplog.at_level(logging.WARNING):
        parse_arguments(["--tts_device", "cuda", "--tts_language", "fr", "--tts_speed", "1.5"])
        [line] = no_effect_lines(caplog)
        assert "--tts_device, --tts_language (not read by --tts hibari)" in line and "tts_speed" not in line
        caplog.clear()
        parse_arguments(["--tts", "facebook-mms", "--tts_device", "cuda", "--tts_language", "fr"])
        assert no_effect_lines(caplog) == []


def test_reference_values_are_checked_like_ours():
    with pytest.raises(ConfigError, match="--lm_gen_max_new_tokens must be at least 1, got 0"):
        parse_arguments(["--lm_gen_max_new_tokens", "0"])
    with pytest.raises(ConfigError, match="--chat_tts_chunk_size must be at least 1, got -5"):
        parse_arguments(["--tts", "chatTTS", "--chat_tts_chunk_size", "-5"])


@pytest.mark.parametrize("stage, name, expected", [
    ("stt", "whisper-mlx", "whisper-mlx"), ("stt", "lightning-whisper-mlx", "whisper-mlx"),
    ("stt", "paraformer", "paraformer"), ("stt", "Faster_Whisper", "faster-whisper"), ("stt", "whisper", "whisper"),
    ("llm", "transformers", "transformers"), ("llm", "open_api", "open_api"), ("llm", "open-api", "open_api"),
    ("llm", "mlx_lm", "mlx-lm"), ("tts", "chatTTS", "chat-tts"), ("tts", "facebookMMS", "facebook-mms"),
    ("tts", "parler", "parler"), ("tts", "melo", "melo"),
])
def test_backend_names_of_the_reference_resolve(stage, name, expected, tmp_path):
    assert getattr(parse_arguments([f"--{stage}", name]), stage)[0].name == expected
    assert getattr(parse_arguments([write_config(tmp_path, {stage: name})]), stage)[0].name == expected


def test_a_misspelled_backend_names_the_closest():
    with pytest.raises(ConfigError, match="unknown --tts backend 'chattt'; did you mean 'chat-tts'\\?"):
        parse_arguments(["--tts", "chattt"])


@pytest.mark.parametrize("argv, message", [
    (["--lm_gen_max_new_token", "1"], "unknown flag: --lm_gen_max_new_token (did you mean --lm_gen_max_new_tokens?)"),
    (["--stt_modle_name", "x"], "unknown flag: --stt_modle_name (did you mean --stt_model_name?)"),
    (["--stt_model", "x"], "unknown flag: --stt_model (did you mean --stt_model_name?)"),  # no abbreviations
    (["--chat_sise=3", "--zzz"], "unknown flags: --chat_sise (did you mean --chat_size?), --zzz;"),
])
def test_an_unknown_flag_names_the_closest(argv, message):
    with pytest.raises(ConfigError) as e:
        parse_arguments(argv)
    assert str(e.value).startswith(message)


def test_an_unknown_json_key_names_the_closest(tmp_path):
    path = write_config(tmp_path, {"mlx_lm_model_nam": "x"})
    with pytest.raises(ConfigError) as e:
        parse_arguments([path])
    assert str(e.value).startswith(f'config file {path}: unknown key: "mlx_lm_model_nam" (did you mean "mlx_lm_model_name"?)')


def test_the_mac_preset_chooses_a_tts_that_installs_from_pypi_and_says_what_to_install(monkeypatch):
    assert MAC_SETTINGS["tts"] == "hibari"
    backend = parse_arguments(["--local_mac_optimal_settings"]).tts[0]
    assert backend.name == "hibari"
    monkeypatch.setitem(sys.modules, "hibari", None)  # as on a Mac where it was not installed
    monkeypatch.delitem(sys.modules, "TTS.hibari_handler", raising=False)
    with pytest.raises(ConfigError) as e:
        backend.load_handler()
    assert str(e.value) == "backend 'hibari' needs a package that is not installed (hibari): pip install hibari-tts soxr"
