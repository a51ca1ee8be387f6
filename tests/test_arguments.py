import dataclasses
import json

import pytest

from arguments_classes import parsing
from arguments_classes.parsing import parse_arguments
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

    def spy(parsed, explicit):
        before = [dataclasses.asdict(p) for p in parsed]
        result = original(parsed, explicit)
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
