"""What a user meets on the command line: clear one-line errors, clean shutdown."""
import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, ServerProcess, free_port


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]


@pytest.mark.parametrize("flags, message", [
    (["--stt", "nope"], "error: unknown --stt backend 'nope'"),
    (["--lm_model_name", "/no/such/model.gguf"], "error: GGUF model file not found: /no/such/model.gguf"),
    (["--stt_model_name", "/no/such/whisper"], "error: Whisper model directory not found: /no/such/whisper"),
    (["--mode", "radio"], "error: unknown --mode 'radio'"),
    (["--local_latency", "fast"], "error: unknown --local_latency 'fast'; choose low or high"),
    (["--max_sessions", "0"], "error: --max_sessions must be at least 1, got 0"),
    (["--max_sessions", "-1"], "error: --max_sessions must be at least 1, got -1"),
    (["--recv_port", "99999"], "error: --recv_port must be between 1 and 65535, got 99999"),
    (["--chunk_size", "0"], "error: --chunk_size must be at least 1, got 0"),
    (["--chunk_size", "-1"], "error: --chunk_size must be at least 1, got -1"),
    (["--idle_timeout_s", "-1"], "error: --idle_timeout_s must be greater than 0, got -1.0"),
])
def test_bad_configuration_is_one_line_and_exit_2(flags, message):
    result = run("s2s_pipeline.py", "--recv_port", str(free_port()), "--send_port", str(free_port()), *flags)
    assert result.returncode == 2
    assert error_lines(result) == [error_lines(result)[0]] and error_lines(result)[0].startswith(message)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("settings, message", [
    ({"max_sessions": "four"}, '"max_sessions" must be an integer, got "four"'),
    ({"recv_port": "abc"}, '"recv_port" must be an integer, got "abc"'),
    ({"recv_port": 99999}, '"recv_port" must be between 1 and 65535, got 99999'),
    ({"max_sessions": 0}, '"max_sessions" must be at least 1, got 0'),
    ({"idle_timeout_s": -1}, '"idle_timeout_s" must be greater than 0, got -1'),
])
def test_bad_json_configuration_is_one_line_and_exit_2(tmp_path, settings, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"recv_port": free_port(), "send_port": free_port(), **settings}))
    result = run("s2s_pipeline.py", str(path))
    assert result.returncode == 2
    assert error_lines(result) == [f"error: config file {path}: {message}"]


@pytest.mark.parametrize("flags, message", [
    (["--no_such_flag", "1"], "error: unknown flag: --no_such_flag"),
    (["--lm_gen_max_new_token", "1"], "error: unknown flag: --lm_gen_max_new_token (did you mean --lm_gen_max_new_tokens?)"),
    (["--stt_modle_name", "x"], "error: unknown flag: --stt_modle_name (did you mean --stt_model_name?)"),
    (["--recv_port", "abc"], "error: argument --recv_port/--recv-port: invalid int value: 'abc'"),
    (["--chat_size"], "error: argument --chat_size/--chat-size: expected one argument"),
    (["--lm_gen_max_new_tokens", "0"], "error: --lm_gen_max_new_tokens must be at least 1, got 0"),
    (["--tts", "chatts"], "error: unknown --tts backend 'chatts'; did you mean 'chat-tts'?"),
])
def test_unknown_and_malformed_flags_are_one_line_and_exit_2(flags, message):
    result = run("s2s_pipeline.py", *flags)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert len(error_lines(result)) == 1 and error_lines(result)[0].startswith(message)


def test_an_unknown_json_key_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"recv_port": free_port(), "mlx_lm_model_nam": "x"}))
    result = run("s2s_pipeline.py", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert error_lines(result) == [f'error: config file {path}: unknown key: "mlx_lm_model_nam" (did you mean '
                                   '"mlx_lm_model_name"?); the keys are the flags\' names']


OFFLINE = {"HF_HUB_OFFLINE": "1", "MODELSCOPE_DOMAIN": "modelscope.invalid"}  # as on this machine, wherever it runs


@pytest.mark.parametrize("flags, message", [
    (["--stt", "whisper-mlx"], "error: Whisper MLX model 'mlx-community/whisper-large-v3-turbo' is not a local directory "
                               "nor in the Hugging Face cache, and the hub is unreachable: pass --stt_model_name"),
    (["--stt", "paraformer"], "error: Paraformer model 'paraformer-zh' is not a local directory nor in the ModelScope "
                              "cache, and ModelScope is unreachable: pass --stt_model_name"),
    (["--tts", "chatTTS", "--chat_tts_chunk_size", "256"], "error: ChatTTS is not installed: pip install ChatTTS"),
    (["--tts", "facebookMMS", "--facebook_mms_device", "cpu"], "error: cannot load the MMS voice 'facebook/mms-tts-eng'"),
])
def test_the_reference_backends_start_or_stop_at_their_model_with_one_line(flags, message):
    import os

    result = subprocess.run([sys.executable, "s2s_pipeline.py", "--recv_port", str(free_port()), "--send_port",
                             str(free_port()), *flags], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **OFFLINE})
    assert result.returncode == 2, result.stderr[-2000:]
    assert error_lines(result) == [error_lines(result)[0]] and error_lines(result)[0].startswith(message), result.stderr


def test_a_busy_port_is_one_line_and_exit_2():
    with socket.socket() as busy:
        busy.bind(("localhost", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("s2s_pipeline.py", "--recv_port", str(port), "--send_port", str(free_port()))
    assert result.returncode == 2
    assert error_lines(result) == [f"error: port {port} on localhost is already in use (another server running?)"]


def test_help_lists_the_flags():
    result = run("s2s_pipeline.py", "--help")
    assert result.returncode == 0
    for flag in ("--mode", "--stt", "--llm", "--tts", "--lm_model_name", "--init_chat_prompt", "--recv_host", "--thresh"):
        assert flag in result.stdout
    # the reference project's names are accepted but not listed: --help shows ours, and says where the map is
    assert "--mlx_lm_model_name " not in result.stdout and "--lm_gen_max_new_tokens " not in result.stdout
    assert "Reference flags" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_server_cleanly(sig):
    server = ServerProcess()
    # a client is connected and talking when the signal comes
    from listen_and_play import connect

    send, recv = connect("127.0.0.1", server.recv_port), connect("127.0.0.1", server.send_port)
    send.sendall(bytes(16000))
    t = time.monotonic()
    code = server.stop(sig)
    took = time.monotonic() - t
    send.close(), recv.close()
    assert code == 0
    assert took < 5, f"shutdown took {took:.1f} s"


def test_client_without_a_server_is_one_line_and_exit_1():
    result = run("listen_and_play.py", "--send_port", str(free_port()), "--recv_port", str(free_port()), timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ")


def test_client_reads_a_wav_and_writes_the_reply(tmp_path):
    """The client's file mode against a tiny loopback server that answers every block with a tone."""
    import threading

    import numpy as np
    import soundfile as sf

    from tests.speech import write_wav

    recv_port, send_port = free_port(), free_port()
    listeners = [socket.create_server(("127.0.0.1", p)) for p in (recv_port, send_port)]
    tone = (0.3 * 32767 * np.sin(np.arange(8000) / 5)).astype("<i2").tobytes()

    def serve():
        inbound, _ = listeners[0].accept()
        outbound, _ = listeners[1].accept()
        got = 0
        while got < 16000:
            got += len(inbound.recv(4096))
        outbound.sendall(tone)  # 0.5 s of "reply" after 0.5 s of question
        inbound.recv(4096)
        time.sleep(3)
        inbound.close(), outbound.close()

    threading.Thread(target=serve, daemon=True).start()
    question, reply = tmp_path / "q.wav", tmp_path / "r.wav"
    write_wav(question, np.zeros(8000, "<i2"))
    result = run("listen_and_play.py", "--send_port", str(recv_port), "--recv_port", str(send_port),
                 "--input_file", str(question), "--output_file", str(reply), "--reply_idle_s", "0.5", timeout=30)
    for listener in listeners:
        listener.close()
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(reply, dtype="int16")
    assert rate == 16000 and audio.tobytes() == tone
