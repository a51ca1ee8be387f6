import dataclasses
import json
import typing

import pytest

from arguments_classes import parsing
from arguments_classes.parsing import parse_arguments
from arguments_classes.validation import Range, describe
from utils.errors import ConfigError


def test_defaults_are_the_embedded_stack():
    config = parse_arguments([])
    assert config.module.mode == "socket"
    assert (config.stt[0].name, config.llm[0].name, config.tts[0].name) == ("faster-whisper", "llama-cpp", "hibari")
    assert config.receiver.recv_port == 12345 and config.sender.send_port == 12346
    assert config.receiver.recv_host == "localhost" and config.sender.send_host == "localhost"


def test_prefixes_are_stripped_and_gen_fields_gathered():
    config = parse_arguments(["--stt_gen_beam_size", "3", "--lm_gen_max_tokens", "20", "--lm_n_threads", "1"])
    stt, llm = config.stt[1], config.llm[1]
    assert stt.gen_kwargs == {"beam_size": 3, "temperature": 0.0}
    assert llm.gen_kwargs["max_tokens"] == 20
    assert llm.n_threads == 1
    assert not hasattr(llm, "lm_n_threads") and not hasattr(llm, "gen_max_tokens")


def test_configs_are_frozen():
    config = parse_arguments([])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.llm[1].chat_size = 5


def test_parsed_objects_are_not_mutated(monkeypatch):
    seen = []
    original = parsing.build_config

    def spy(parsed, explicit, *rest):
        before = [dataclasses.asdict(p) for p in parsed]
        result = original(parsed, explicit, *rest)
        seen.append(before == [dataclasses.asdict(p) for p in parsed])
        return result

    monkeypatch.setattr(parsing, "build_config", spy)
    parse_arguments(["--device", "cuda", "--local_mac_optimal_settings", "--stt", "faster-whisper",
                     "--llm", "llama-cpp", "--tts", "hibari"])
    assert seen == [True]


def test_device_sets_every_component_but_explicit_flags_win():
    config = parse_arguments(["--device", "cuda", "--lm_device", "cpu"])
    assert config.stt[1].device == "cuda"
    assert config.tts[1].device == "cuda"
    assert config.llm[1].device == "cpu"


def test_json_file_gives_the_same_settings(tmp_path):
    flags = {"lm_gen_max_tokens": 33, "chat_size": 4, "stt_gen_beam_size": 2, "recv_port": 23456, "thresh": 0.5}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(flags))
    from_json = parse_arguments([str(path)])
    from_cli = parse_arguments([f"--{k}={v}" for k, v in flags.items()])
    assert from_json == from_cli
    assert from_json.llm[1].gen_kwargs["max_tokens"] == 33 and from_json.vad.thresh == 0.5


def test_json_with_an_unknown_key_is_a_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"not_a_flag": 1}))
    with pytest.raises(ConfigError, match="not_a_flag"):
        parse_arguments([str(path)])


def test_broken_json_is_a_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_arguments([str(path)])


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match="unknown --tts backend 'nope'.*hibari"):
        parse_arguments(["--tts", "nope"])


def test_mac_settings_select_the_mac_stack_but_explicit_flags_win(monkeypatch):
    # The Mac backends may not be registered on this machine: check the chosen names before the registry lookup.
    chosen = {}
    monkeypatch.setattr(parsing, "choose", lambda registry, name, flag: chosen.setdefault(flag, name) and next(iter(registry.values())))
    config = parse_arguments(["--local_mac_optimal_settings", "--tts", "hibari"])
    assert config.module.device == "mps" and config.module.mode == "local"
    assert chosen == {"--stt": "moonshine", "--llm": "mlx-lm", "--tts": "hibari"}


def write_config(tmp_path, settings: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(settings))
    return str(path)


@pytest.mark.parametrize("settings, problem", [
    ({"max_sessions": "four"}, '"max_sessions" must be an integer, got "four"'),
    ({"recv_port": "abc"}, '"recv_port" must be an integer, got "abc"'),
    ({"max_sessions": True}, '"max_sessions" must be an integer, got true'),  # a bool is not a count
    ({"recv_port": 12345.5}, '"recv_port" must be an integer, got 12345.5'),
    ({"chunk_size": None}, '"chunk_size" must be an integer, got null'),
    ({"idle_timeout_s": "10"}, '"idle_timeout_s" must be a number, got "10"'),
    ({"thresh": False}, '"thresh" must be a number, got false'),
    ({"audio_enhancement": "yes"}, '"audio_enhancement" must be true or false, got "yes"'),
    ({"init_chat_prompt": 3}, '"init_chat_prompt" must be a string, got 3'),
    ({"input_device": 2}, '"input_device" must be a string or null, got 2'),
])
def test_json_values_of_the_wrong_type_are_one_clear_error(tmp_path, settings, problem):
    path = write_config(tmp_path, settings)
    with pytest.raises(ConfigError) as e:
        parse_arguments([path])
    assert str(e.value) == f"config file {path}: {problem}"


def test_json_integers_in_float_settings_become_floats(tmp_path):
    config = parse_arguments([write_config(tmp_path, {"idle_timeout_s": 30, "thresh": 1, "lm_gen_temperature": 0})])
    assert config.receiver.idle_timeout_s == 30.0 and type(config.receiver.idle_timeout_s) is float
    assert type(config.vad.thresh) is float and type(config.llm[1].gen_kwargs["temperature"]) is float


@pytest.mark.parametrize("flag, value, problem", [
    ("recv_port", "99999", "must be between 1 and 65535"),
    ("recv_port", "0", "must be between 1 and 65535"),
    ("send_port", "65536", "must be between 1 and 65535"),
    ("chunk_size", "0", "must be at least 1"),
    ("chunk_size", "-1024", "must be at least 1"),
    ("max_sessions", "0", "must be at least 1"),
    ("max_sessions", "-1", "must be at least 1"),
    ("max_sessions_per_host", "0", "must be at least 1"),
    ("idle_timeout_s", "-1.0", "must be greater than 0"),
    ("idle_timeout_s", "0.0", "must be greater than 0"),
    ("idle_timeout_s", "NaN", "must be a number"),
    ("sample_rate", "44100", "must be 16000 (the audio in and out is 16 kHz mono int16: resample it first)"),
    ("thresh", "1.5", "must be between 0 and 1"),
    ("thresh", "-0.1", "must be between 0 and 1"),
    ("min_silence_ms", "-1", "must be at least 0"),
    ("min_speech_ms", "-1", "must be at least 0"),
    ("speech_pad_ms", "-30", "must be at least 0"),
    ("speculative_silence_ms", "-1", "must be at least 0"),
    ("max_speech_ms", "0.0", "must be greater than 0"),
    ("chat_size", "-1", "must be at least 0"),
    ("lm_gen_max_tokens", "0", "must be at least 1"),
    ("lm_gen_temperature", "-0.5", "must be at least 0"),
    ("stt_gen_temperature", "-1.0", "must be at least 0"),
    ("stt_gen_beam_size", "0", "must be at least 1"),
    ("tts_blocksize", "0", "must be at least 1"),
    ("local_blocksize", "-512", "must be at least 1"),
    ("playback_tail_ms", "-1", "must be at least 0"),
    ("lm_n_threads", "0", "must be at least 1"),
    ("tts_speed", "3.0", "must be between 0.5 and 2.0"),
])
def test_a_value_out_of_range_is_one_clear_error(flag, value, problem):
    with pytest.raises(ConfigError) as e:
        parse_arguments([f"--{flag}", value])
    assert str(e.value) == f"--{flag} {problem}, got {value}"


def test_a_json_value_out_of_range_names_the_file_and_key(tmp_path):
    path = write_config(tmp_path, {"recv_port": 99999})
    with pytest.raises(ConfigError) as e:
        parse_arguments([path])
    assert str(e.value) == f'config file {path}: "recv_port" must be between 1 and 65535, got 99999'


def test_the_edges_of_each_range_are_accepted():
    config = parse_arguments(["--recv_port", "1", "--send_port", "65535", "--max_sessions", "1", "--chunk_size", "1",
                              "--thresh", "1.0", "--speculative_silence_ms", "0", "--chat_size", "0",
                              "--idle_timeout_s", "0.001", "--lm_gen_temperature", "0"])
    assert (config.receiver.recv_port, config.sender.send_port, config.receiver.max_sessions) == (1, 65535, 1)
    assert config.vad.thresh == 1.0 and config.vad.speculative_silence_ms == 0 and config.llm[1].chat_size == 0


def test_sessions_per_host_is_a_receiver_setting():
    assert parse_arguments([]).receiver.max_sessions_per_host == 4
    assert parse_arguments(["--max_sessions_per_host", "2"]).receiver.max_sessions_per_host == 2


def every_setting():
    return [(cls, f, typing.get_type_hints(cls, include_extras=True)[f.name])
            for cls in parsing.argument_classes() for f in dataclasses.fields(cls)]


def test_every_numeric_setting_declares_its_bounds():
    unbounded = [f"{cls.__name__}.{f.name}" for cls, f, hint in every_setting()
                 if describe(hint)[0] in (int, float) and not describe(hint)[2]]
    assert unbounded == []


def test_every_port_is_a_port():
    ports = {f.name: describe(hint)[2] for _, f, hint in every_setting() if f.name.endswith("_port")}
    assert {"recv_port", "send_port", "realtime_port"} <= set(ports)
    off_with_zero = {"realtime_port"}  # 0 turns the Realtime endpoint off
    assert all(bounds == [Range(0 if name in off_with_zero else 1, 65535)] for name, bounds in ports.items()), ports


def test_help_texts_are_kept():
    missing = [f.name for _, f, _ in every_setting() if not f.metadata.get("help")]
    assert missing == []
