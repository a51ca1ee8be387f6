"""The presets in presets/: each parses to the setup it is named for, flags after it win, and the two that run
offline here start and answer a spoken question."""
import dataclasses
import json
import re
import subprocess
import sys
import threading

import pytest

import STT
import TTS
from arguments_classes import parsing
from arguments_classes.parsing import MAC_SETTINGS, parse_arguments
from tests.conftest import ROOT, ServerProcess, free_port
from utils.errors import ConfigError

PRESETS = ROOT / "presets"
NAMES = ("cpu-offline", "cpu-lowest-latency", "gpu-server", "mac-apple-silicon", "remote-stages", "multilingual")


def preset(name: str) -> str:
    return str(PRESETS / f"{name}.json")


def keys(name: str) -> dict:
    return json.loads((PRESETS / f"{name}.json").read_text())


def backends(config) -> tuple[str, str, str]:
    return config.stt[0].name, config.llm[0].name, config.tts[0].name


def write_config(tmp_path, settings: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(settings))
    return str(path)


def test_the_presets_are_these_and_the_readme_lists_each():
    assert sorted(p.stem for p in PRESETS.glob("*.json")) == sorted(NAMES)
    readme = (ROOT / "README.md").read_text()
    for name in NAMES:
        assert f"presets/{name}.json" in readme, name


@pytest.mark.parametrize("name", [n for n in NAMES if n != "cpu-offline"])
def test_a_preset_names_only_what_differs_from_the_defaults(name):
    defaults = {f.name: f.default for cls in parsing.argument_classes() for f in dataclasses.fields(cls)}
    same = [k for k, v in keys(name).items() if k != parsing.COMMENT_KEY and v == defaults[k]]
    assert same == []


def test_cpu_offline_is_the_default_spelled_out():
    assert parse_arguments([preset("cpu-offline")]) == parse_arguments([])
    assert len(keys("cpu-offline")) > 20  # spelled out, not empty


def test_cpu_lowest_latency_is_the_default_stack_with_the_measured_settings():
    config = parse_arguments([preset("cpu-lowest-latency")])
    assert backends(config) == ("faster-whisper", "llama-cpp", "hibari")
    assert config.stt[1].model_name is None and config.llm[1].model_name is None  # the bundled models: offline
    assert (config.vad.end_of_turn, config.vad.speculative_silence_ms, config.vad.min_silence_ms) == ("silence", 32, 300)
    settings = {k: v for k, v in keys("cpu-lowest-latency").items() if k != parsing.COMMENT_KEY}
    assert settings  # something differs from cpu-offline
    flags = [str(a) for k, v in settings.items() for a in (f"--{k}", v)]
    assert config == parse_arguments(flags)


def test_gpu_server_runs_bigger_models_on_cuda_for_remote_clients():
    config = parse_arguments([preset("gpu-server")])
    assert backends(config) == ("faster-whisper", "transformers", "hibari")
    assert (config.stt[1].model_name, config.stt[1].device, config.stt[1].compute_type) == ("large-v3-turbo", "cuda", "float16")
    assert (config.llm[1].model_name, config.llm[1].device, config.llm[1].torch_dtype) == (
        "Qwen/Qwen2.5-7B-Instruct", "cuda", "bfloat16")
    assert config.tts[1].device == "cpu"  # hibari runs on onnxruntime's CPU provider
    assert (config.receiver.recv_host, config.sender.send_host) == ("0.0.0.0", "0.0.0.0")
    assert config.module.mode == "socket"


def test_mac_apple_silicon_is_what_local_mac_optimal_settings_chooses():
    config = parse_arguments([preset("mac-apple-silicon")])
    chosen = parse_arguments(["--local_mac_optimal_settings"])
    assert dataclasses.replace(chosen, module=dataclasses.replace(chosen.module, local_mac_optimal_settings=False)) == config
    assert {k: getattr(config.module, k) for k in MAC_SETTINGS} == MAC_SETTINGS
    assert backends(config) == ("moonshine", "mlx-lm", "hibari")
    assert {config.stt[1].device, config.llm[1].device, config.tts[1].device} == {"mps"}


def test_multilingual_detects_the_language_and_has_a_voice_per_language():
    from TTS.voices import MMS_LANGUAGES

    config = parse_arguments([preset("multilingual")])
    assert backends(config) == ("faster-whisper", "llama-cpp", "facebook-mms")
    assert config.stt[1].language == "auto"
    assert config.stt[1].model_name == "base"  # multilingual: not a ".en" model
    assert {"en", "fr", "es", "de"} <= set(MMS_LANGUAGES)


def test_remote_stages_puts_every_stage_on_an_openai_compatible_server():
    assert "open_api" in STT.BACKENDS and "open_api" in TTS.BACKENDS, "--stt open_api / --tts open_api (issue #14)"
    config = parse_arguments([preset("remote-stages")])
    assert backends(config) == ("open_api", "open_api", "open_api")
    stt, llm, tts = config.stt[1], config.llm[1], config.tts[1]
    # one server for all three unless flags say otherwise (the defaults: the file names none)
    assert stt.base_url == llm.open_api_base_url == tts.base_url == "http://127.0.0.1:8000/v1"
    assert stt.api_key is llm.open_api_api_key is tts.api_key is None  # $OPENAI_API_KEY


def test_remote_stages_with_each_stage_on_its_own_server():
    config = parse_arguments([
        preset("remote-stages"),
        "--stt_base_url", "http://asr:8001/v1", "--stt_model_name", "Systran/faster-whisper-small", "--stt_timeout_s", "5",
        "--open_api_base_url", "http://llm:8000/v1",
        "--tts_base_url", "http://tts:8880/v1", "--tts_model_name", "kokoro", "--tts_voice", "af_heart", "--tts_speed", "1.2",
        "--stt_api_key", "k1", "--tts_api_key", "k2",
    ])
    stt, llm, tts = config.stt[1], config.llm[1], config.tts[1]
    assert (stt.base_url, stt.model_name, stt.timeout_s, stt.api_key) == ("http://asr:8001/v1", "Systran/faster-whisper-small", 5.0, "k1")
    assert llm.open_api_base_url == "http://llm:8000/v1"
    assert (tts.base_url, tts.model_name, tts.voice, tts.speed, tts.api_key) == ("http://tts:8880/v1", "kokoro", "af_heart", 1.2, "k2")


# --- a preset, then flags -----------------------------------------------------------------------------------

def test_flags_after_a_preset_override_its_values_and_keep_the_rest():
    config = parse_arguments([preset("gpu-server"), "--recv_host", "127.0.0.1", "--lm_model_name", "Qwen/Qwen2.5-1.5B-Instruct"])
    assert config.receiver.recv_host == "127.0.0.1" and config.sender.send_host == "0.0.0.0"
    assert config.llm[1].model_name == "Qwen/Qwen2.5-1.5B-Instruct" and config.llm[1].device == "cuda"
    assert config.stt[1].model_name == "large-v3-turbo"


def test_a_flag_may_change_a_presets_backend():
    config = parse_arguments([preset("gpu-server"), "--llm", "llama-cpp", "--lm_model_name", "/models/qwen.gguf"])
    assert backends(config)[1] == "llama-cpp" and config.llm[1].model_name == "/models/qwen.gguf"


def test_a_presets_keys_count_as_given():
    # its own device beats the global one whether that comes from the file or a flag
    config = parse_arguments([preset("mac-apple-silicon"), "--stt_device", "cpu"])
    assert (config.stt[1].device, config.llm[1].device) == ("cpu", "mps")
    config = parse_arguments([preset("gpu-server"), "--device", "cpu"])
    assert (config.stt[1].device, config.llm[1].device, config.tts[1].device) == ("cuda", "cuda", "cpu")


def test_local_mac_optimal_settings_in_a_file_yields_to_a_flag(tmp_path):
    config = parse_arguments([write_config(tmp_path, {"local_mac_optimal_settings": True}), "--stt", "faster-whisper"])
    assert backends(config) == ("faster-whisper", "mlx-lm", "hibari")
    # and the file's own keys beat it too
    config = parse_arguments([write_config(tmp_path, {"local_mac_optimal_settings": True, "llm": "llama-cpp"})])
    assert backends(config) == ("moonshine", "llama-cpp", "hibari")


def test_a_flag_beats_the_files_reference_name_for_the_same_setting_quietly(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        ours = parse_arguments([write_config(tmp_path, {"lm_gen_max_new_tokens": 50}), "--lm_gen_max_tokens", "20"])
        theirs = parse_arguments([write_config(tmp_path, {"lm_gen_max_tokens": 50}), "--lm_gen_max_new_tokens", "20"])
    assert ours.llm[1].gen_kwargs["max_tokens"] == theirs.llm[1].gen_kwargs["max_tokens"] == 20
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == []


def test_a_reference_flag_for_another_backend_overrides_nothing(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        config = parse_arguments([write_config(tmp_path, {"lm_model_name": "/models/a.gguf"}), "--mlx_lm_model_name", "b"])
    assert config.llm[1].model_name == "/models/a.gguf"
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "--mlx_lm_model_name (for --llm mlx-lm; chosen: llama-cpp)" in line


def test_warnings_name_the_files_keys_as_keys_and_the_flags_as_flags(tmp_path, caplog):
    import logging

    path = write_config(tmp_path, {"lm_n_ctx": 4096})
    with caplog.at_level(logging.WARNING):
        parse_arguments([path, "--llm", "transformers", "--lm_n_threads", "2"])
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert '"lm_n_ctx", --lm_n_threads (not read by --llm transformers)' in line


def test_a_bad_value_is_named_where_it_was_given(tmp_path):
    path = write_config(tmp_path, {"recv_port": 99999})
    with pytest.raises(ConfigError, match=re.escape(f'config file {path}: "recv_port" must be between 1 and 65535, got 99999')):
        parse_arguments([path, "--send_port", "5000"])
    with pytest.raises(ConfigError, match="^--recv_port must be between 1 and 65535, got 99999$"):
        parse_arguments([preset("cpu-offline"), "--recv_port", "99999"])


def test_a_json_file_after_a_flag_is_refused():
    with pytest.raises(ConfigError, match=r"unexpected argument '.*cpu-offline.json' \(a JSON config file comes first"):
        parse_arguments(["--recv_port", "5000", preset("cpu-offline")])


# --- the description key --------------------------------------------------------------------------------------

@pytest.mark.parametrize("comment", ["one line", ["two", "lines"], []])
def test_the_comment_key_is_skipped(tmp_path, comment):
    with_comment = parse_arguments([write_config(tmp_path, {"_comment": comment, "chat_size": 4})])
    assert with_comment == parse_arguments(["--chat_size", "4"])


@pytest.mark.parametrize("comment", [3, {"a": "b"}, ["ok", 1], None])
def test_a_comment_that_is_not_text_is_an_error(tmp_path, comment):
    path = write_config(tmp_path, {"_comment": comment})
    with pytest.raises(ConfigError, match=re.escape(f'config file {path}: "_comment" must be a string or a list of strings')):
        parse_arguments([path])


def test_other_underscore_keys_are_unknown(tmp_path):
    path = write_config(tmp_path, {"_comments": "x"})
    with pytest.raises(ConfigError, match='unknown key: "_comments"'):
        parse_arguments([path])


# --- on the command line ----------------------------------------------------------------------------------------

def run(*args, timeout=120):
    return subprocess.run([sys.executable, "s2s_pipeline.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]


@pytest.mark.parametrize("flags, message", [
    (["--recv_port", "99999"], "error: --recv_port must be between 1 and 65535, got 99999"),
    (["--recv_port", "abc"], "error: argument --recv_port/--recv-port: invalid int value: 'abc'"),
    (["--stt_modle_name", "x"], "error: unknown flag: --stt_modle_name (did you mean --stt_model_name?)"),
    (["--llm", "nope"], "error: unknown --llm backend 'nope'"),
])
def test_a_bad_flag_after_a_preset_is_one_line_and_exit_2(flags, message):
    result = run(preset("cpu-offline"), *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert len(error_lines(result)) == 1 and error_lines(result)[0].startswith(message), result.stderr


def test_help_says_a_preset_comes_first_and_flags_override_it():
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "JSON file" in text and "presets/" in text and "flags after the file override its values" in text


class PresetServer(ServerProcess):
    """ServerProcess, with a preset as the first argument: `s2s_pipeline.py <preset> --recv_port P --send_port Q`."""

    def __init__(self, path: str, *flags: str, ready_timeout: float = 120.0) -> None:
        import os

        self.recv_port, self.send_port = free_port(), free_port()
        cmd = [sys.executable, "-u", str(ROOT / "s2s_pipeline.py"), path, "--recv_port", str(self.recv_port),
               "--send_port", str(self.send_port), *flags]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "500"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.stdout, self.stderr = [], []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._collect, args=(stream, sink), daemon=True).start()
        self.wait_for(lambda: any("ready: talk to me" in line for line in self.stderr), ready_timeout, "server ready")


@pytest.mark.integration
@pytest.mark.parametrize("name", ["cpu-offline", "cpu-lowest-latency"])
def test_an_offline_preset_starts_and_answers_a_spoken_question(name):
    from listen_and_play import converse
    from tests.speech import espeak
    from tests.transcribe import transcribe, word_recall, words

    server = PresetServer(preset(name))  # its ports overridden by the flags after it
    try:
        (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port,
                               [espeak("What is the capital of Germany?")], silence_s=20, reply_idle_s=1.5, timeout_s=60)
        assert reply.first_at is not None, "no reply audio"
        assert len(reply.audio) / 2 / 16000 > 0.5
        server.wait_for(lambda: server.lines("ASSISTANT:"), 10, "ASSISTANT line")
        assert {"capital", "germany"} <= set(words(server.lines("USER:")[-1]))
        said = server.lines("ASSISTANT:")[-1]
        assert word_recall(said, transcribe(reply.audio)) >= 0.6, said
    finally:
        code = server.stop()
    assert code == 0
