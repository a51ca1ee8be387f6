"""--stt open_api and --tts open_api against a real OpenAI-compatible HTTP server on loopback (tests/openai_fake.py),
which records the exact requests the openai SDK sends and answers with transcripts and streamed PCM, or fails as
scripted: down, slow, 500, 429, garbage, a cut connection, a stream that stalls.

The integration tests run the STT against faster-whisper-server (a real server from PyPI) on the bundled tiny.en,
give the loopback server the bundled Whisper (real transcripts of espeak speech) and hibari (real speech), and run
the whole pipeline with every stage remote (the language model behind llama.cpp's own server): a spoken question
answered aloud, with /healthz and /metrics watched."""
from __future__ import annotations

import contextlib
import functools
import logging
import queue
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from benchmarks.server import http_service
from STT.open_api_handler import language_code
from tests import test_llm_backends
from tests.conftest import free_port
from tests.openai_fake import PCM_RATE, RecordingServer, tone_speech, wav_samples
from TTS.open_api_handler import pcm_pieces, without_leading_silence
from utils.pipeline.messages import END, Conversation, Sentence, SpeechSegment, Transcript, Turn

llama_cpp_server = test_llm_backends.llama_cpp_server  # a fixture: llama.cpp's own OpenAI-compatible server
AUDIO = (0.3 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)).astype(np.float32)  # 1 s: a "question"


def make_handler(stage, url, *flags, queue_in=None, queue_out=None, dropped=None):
    backend, config = getattr(parse_arguments([f"--{stage}", "open_api", f"--{stage}_base_url", url, *flags]), stage)
    return backend.load_handler()(threading.Event(), queue_in, queue_out, setup_kwargs={"config": config},
                                  on_turn_dropped=dropped)


def segment(audio=AUDIO):
    return SpeechSegment(audio, Turn(Conversation(), time.monotonic()))


def sentence(text, last=True, turn=None):
    turn = turn or Turn(Conversation(), time.monotonic())
    turn.conversation.should_listen.clear()  # as the VAD leaves it: the reply's end lets it listen again
    return Sentence(text, "en", turn, last=last)


def samples(outs) -> np.ndarray:
    return np.concatenate([np.frombuffer(o.pcm, dtype="<i2") for o in outs if o.pcm] or [np.zeros(0, "<i2")])


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float32)))
    return float(np.argmax(spectrum) * rate / len(x))


def errors(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def assert_one_error_line(caplog, stage: str, url: str, expected: str) -> None:
    """The stage logged exactly one ERROR line, without a traceback, naming its server and what went wrong."""
    lines = errors(caplog)
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert message.startswith(f"{stage.upper()} server {url}: ") and message.endswith("; dropping this turn"), message
    assert expected in message, message


def time_the_drop(caplog, queue_in: queue.Queue, dropped: queue.Queue, first, *rest) -> float:
    """Put `first` (and the rest of its turn) into a running stage: the seconds until the stage dropped that turn."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        started = time.monotonic()
        for item in (first, *rest):
            queue_in.put(item)
        assert dropped.get(timeout=10) is first
        return time.monotonic() - started


def stage_with_queues(stage: str, port: int):
    """The stage's open_api handler for a server on `port`, with a 0.5 s time-out: (url, handler, in, out, dropped)."""
    url = f"http://127.0.0.1:{port}/v1"
    dropped, queue_in, queue_out = queue.Queue(), queue.Queue(), queue.Queue()
    handler = make_handler(stage, url, f"--{stage}_timeout_s", "0.5", queue_in=queue_in, queue_out=queue_out,
                           dropped=dropped.put)
    return url, handler, queue_in, queue_out, dropped


class Running:
    """A handler's loop on its own thread, as in the pipeline: items in, outputs and dropped turns out."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.thread = threading.Thread(target=handler.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.handler.queue_in.put(END)
        self.thread.join(10)
        assert not self.thread.is_alive()


@contextlib.contextmanager
def failing_server(port, script):
    """A server on `port` that is slow for 3 s when told to be, or none at all (down) when `script` is None."""
    if script is None:
        idle = RecordingServer()  # never started, on a port of its own: nothing answers on `port`
        try:
            yield idle
        finally:
            idle.httpd.server_close()
        return
    with RecordingServer(port=port) as server:
        server.slow_s = 3.0
        yield server


@pytest.fixture
def server():
    with RecordingServer(["Hi."]) as srv:
        yield srv


# --- speech to text -------------------------------------------------------------------------------------------


def test_stt_sends_the_utterance_as_a_wav_with_the_model_and_language(server):
    handler = make_handler("stt", server.base_url, "--stt_model_name", "my-whisper", "--stt_api_key", "sk-test")
    server.transcriptions.clear()  # the warm-up request
    server.transcripts.append("What time is it?")
    out = list(handler.process(segment()))
    assert [(t.text, t.language) for t in out] == [("What time is it?", "en")]
    assert isinstance(out[0], Transcript)
    request, = server.transcriptions
    assert (request["model"], request["language"], request["response_format"]) == ("my-whisper", "en", "json")
    assert (request["filename"], request["file_content_type"]) == ("speech.wav", "audio/wav")
    pcm, rate = wav_samples(request["file"])
    assert rate == 16000 and len(pcm) == len(AUDIO)
    assert np.abs(pcm / 32767 - AUDIO).max() < 1e-3
    assert "temperature" not in request  # greedy is the server's default too


def test_stt_with_auto_language_passes_on_the_language_the_server_detected(server):
    handler = make_handler("stt", server.base_url, "--language", "auto")
    server.transcriptions.clear()
    server.transcribe = lambda wav, fields: ("Bonjour, quelle heure est-il ?", "french")  # OpenAI gives names
    transcript, = handler.process(segment())
    assert (transcript.text, transcript.language) == ("Bonjour, quelle heure est-il ?", "fr")
    request = server.transcriptions[-1]
    assert request["response_format"] == "verbose_json" and "language" not in request
    server.transcribe = lambda wav, fields: ("Hola.", "es")  # others give codes
    assert [t.language for t in handler.process(segment())] == ["es"]


def test_server_language_names_become_codes():
    assert [language_code(x) for x in ("en", "english", "French", "zh", None, "")] == ["en", "en", "fr", "zh", None, None]


def test_stt_empty_transcript_drops_the_turn_quietly(server, caplog):
    dropped = []
    handler = make_handler("stt", server.base_url, dropped=dropped.append)
    server.transcripts.append("")
    seg = segment()
    with caplog.at_level(logging.INFO):
        assert list(handler.process(seg)) == []
    assert dropped == [seg] and errors(caplog) == []


STT_FAILURES = {
    "down": ("cannot connect", None),
    "500": ("answered 500", [500] * 20),  # retried until the deadline is near
    "400": ("answered 400", [400]),
    "slow": ("no answer within 0.5 s (--stt_timeout_s)", ["slow"]),
    "garbage": ("", ["garbage"]),
    "hang-up": ("", ["hang-up"]),
}


@pytest.mark.parametrize("failure", list(STT_FAILURES))
def test_stt_failure_drops_the_turn_with_one_error_line_and_the_next_turn_works(failure, caplog):
    expected, script = STT_FAILURES[failure]
    port = free_port()
    with failing_server(port, script) as server:
        url, handler, queue_in, queue_out, dropped = stage_with_queues("stt", port)
        server.script.extend(script or [])
        running = Running(handler)
        took = time_the_drop(caplog, queue_in, dropped, segment())
        assert_one_error_line(caplog, "stt", url, expected)
        assert took < 2.0, took  # within the deadline, not the slow server's 3 s
        assert queue_out.empty()

    with RecordingServer(port=port) as server:  # the server is back (or answers well now): the next turn works
        server.transcripts.append("are you there")
        queue_in.put(segment())
        assert queue_out.get(timeout=10).text == "are you there"
        running.stop()


def test_stt_retries_429_and_5xx_within_the_deadline(server, caplog):
    handler = make_handler("stt", server.base_url, "--stt_timeout_s", "5")
    server.transcriptions.clear()
    server.script.extend([429, 503, 500])
    server.transcripts.append("third time lucky")
    with caplog.at_level(logging.INFO):
        assert [t.text for t in handler.process(segment())] == ["third time lucky"]
    assert len(server.transcriptions) == 4
    assert errors(caplog) == []
    assert sum("answered 429; retrying" in r.getMessage() for r in caplog.records) == 1


def test_stt_gives_up_retrying_when_the_deadline_is_near(server, caplog):
    dropped = []
    handler = make_handler("stt", server.base_url, "--stt_timeout_s", "1", dropped=dropped.append)
    server.transcriptions.clear()
    server.retry_after = None  # our own backoff: 0.25, 0.5, 1 s...
    server.script.extend([503] * 10)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        assert list(handler.process(segment())) == []
    assert time.monotonic() - started < 1.2
    assert len(dropped) == 1 and 2 <= len(server.transcriptions) <= 3
    message, = [r.getMessage() for r in errors(caplog)]
    assert "answered 503" in message and "no time left to retry within 1 s (--stt_timeout_s)" in message


def test_stt_stops_waiting_for_a_slow_server_when_the_turn_is_withdrawn_or_at_shutdown(server, caplog):
    handler = make_handler("stt", server.base_url)
    server.script.extend(["slow", "slow"])
    turn = Turn(Conversation(), time.monotonic(), tentative=True)
    threading.Timer(0.3, turn.withdraw).start()  # the user went on speaking
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert list(handler.process(SpeechSegment(AUDIO, turn))) == []
        assert time.monotonic() - started < 1.0
        threading.Timer(0.3, handler.stop_event.set).start()
        assert list(handler.process(segment())) == []
        assert time.monotonic() - started < 2.0
    assert errors(caplog) == []


# --- text to speech -------------------------------------------------------------------------------------------


def test_tts_sends_the_sentence_and_speaks_the_streamed_pcm_at_16_khz(server):
    handler = make_handler("tts", server.base_url, "--tts_model_name", "kokoro", "--tts_voice", "af_heart",
                           "--tts_speed", "1.25", "--tts_blocksize", "256")
    server.speeches.clear()
    text = "one two three four five"
    s = sentence(text)
    outs = list(handler.process(s))
    assert server.speeches == [{"model": "kokoro", "voice": "af_heart", "input": text, "response_format": "pcm",
                                "speed": 1.25}]
    assert all(len(o.pcm) == 2 * 256 for o in outs if o.pcm) and outs[-1].last and outs[-1].pcm == b""
    got = samples(outs)
    sent_s = len(tone_speech(text)) / 2 / PCM_RATE  # 0.5 s at 24 kHz
    assert abs(len(got) / 16000 - sent_s) < 256 / 16000 + 0.03  # resampled, not sped up or cut
    assert abs(dominant_hz(got, 16000) - 440) < 5
    assert s.turn.conversation.should_listen.is_set()


def test_tts_first_audio_comes_before_the_whole_response_has_arrived(server):
    handler = make_handler("tts", server.base_url)
    server.speech_sent.clear()
    server.chunk_s, server.chunk_delay_s = 0.1, 0.15  # 1 s of speech sent over 1.35 s
    outs = handler.process(sentence(" ".join(["word"] * 10)))
    first = next(outs)
    first_at = time.monotonic()
    assert first.pcm
    rest = list(outs)
    (server_first, server_last), = server.speech_sent
    assert first_at < server_last - 1.0, (first_at - server_first, server_last - server_first)
    assert len(samples([first, *rest])) >= 0.95 * 16000


def test_leading_silence_is_cut_as_the_audio_streams():
    rate = 24000
    silence, tone = np.zeros(int(0.3 * rate), np.float32), np.full(100, 0.5, np.float32)
    pieces = [silence[:5000], silence[5000:], tone, silence[:300]]
    out = np.concatenate(list(without_leading_silence(iter(pieces), rate, keep_s=0.02)))
    assert len(out) == int(0.02 * rate) + 100 + 300
    assert np.all(out[:int(0.02 * rate)] == 0) and np.all(out[int(0.02 * rate):][:100] == 0.5)


def test_pcm_split_inside_a_sample_is_joined():
    pcm = np.arange(-500, 500, dtype="<i2").tobytes()
    chunks = [pcm[:3], pcm[3:4], pcm[4:1001], pcm[1001:]]
    joined = np.concatenate(list(pcm_pieces(chunks)))
    assert np.array_equal(np.round(joined * 32768).astype(int), np.arange(-500, 500))


TTS_FAILURES = {
    "down": ("cannot connect", None),
    "500": ("answered 500", [500] * 20),  # retried until the deadline is near
    "slow": ("no answer within 0.5 s (--tts_timeout_s)", ["slow"]),
    "garbage": ("answered application/json instead of audio", ["garbage"]),
    "stall": ("the audio stream broke off", ["stall"]),
    "hang-up": ("", ["hang-up"]),
}


@pytest.mark.parametrize("failure", list(TTS_FAILURES))
def test_tts_failure_drops_the_turn_with_one_error_line_and_the_next_turn_works(failure, caplog):
    expected, script = TTS_FAILURES[failure]
    port = free_port()
    with failing_server(port, script) as server:
        url, handler, queue_in, queue_out, dropped = stage_with_queues("tts", port)
        running = Running(handler)
        server.speeches.clear()
        server.script.extend(script or [])
        turn = Turn(Conversation(), time.monotonic())
        turn.conversation.should_listen.clear()
        # the first sentence, then the rest of the reply with its closing empty sentence
        took = time_the_drop(caplog, queue_in, dropped, Sentence("The first sentence.", "en", turn),
                             Sentence("A second one.", "en", turn), Sentence("", "en", turn, last=True))
        time.sleep(0.3)  # the rest of the reply passes through the stage
        assert_one_error_line(caplog, "tts", url, expected)
        assert took < 2.0, took
        assert {s["input"] for s in server.speeches} <= {"The first sentence."}  # not the rest of that reply
        assert not any(item.last for item in drain(queue_out))  # no end of reply: the turn was dropped

    with RecordingServer(port=port) as server:
        turn = Turn(Conversation(), time.monotonic())
        queue_in.put(Sentence("Are you back?", "en", turn, last=True))
        outs = [queue_out.get(timeout=10)]
        while not outs[-1].last:
            outs.append(queue_out.get(timeout=10))
        assert len(samples(outs)) > 0.2 * 16000
        running.stop()


def drain(q: queue.Queue) -> list:
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    return items


def test_tts_retries_429_then_speaks(server, caplog):
    handler = make_handler("tts", server.base_url)
    server.speeches.clear()
    server.script.extend([429, 502])
    with caplog.at_level(logging.INFO):
        outs = list(handler.process(sentence("hello there")))
    assert len(server.speeches) == 3 and errors(caplog) == []
    assert len(samples(outs)) > 0.15 * 16000 and outs[-1].last


def test_tts_stops_a_stalled_stream_at_shutdown(server):
    handler = make_handler("tts", server.base_url, "--tts_timeout_s", "20")
    server.script.append("stall")
    threading.Timer(0.5, handler.stop_event.set).start()
    started = time.monotonic()
    list(handler.process(sentence("hello")))
    assert time.monotonic() - started < 1.5


# --- integration: every stage remote, real models behind the servers, the real server process and client --------


def whisper_transcribe(wav: bytes, fields: dict) -> tuple[str, str]:
    """The server side of a transcription: the bundled Whisper (tiny.en) on the WAV the SDK sent."""
    from tests.transcribe import whisper

    pcm, rate = wav_samples(wav)
    assert rate == 16000
    segments, info = whisper().transcribe(pcm.astype(np.float32) / 32768, language=fields.get("language"), beam_size=1)
    return " ".join(s.text.strip() for s in segments), info.language


@functools.lru_cache(maxsize=1)
def hibari_voice():
    from hibari import Hibari

    return Hibari()


def hibari_speak(text: str, fields: dict) -> bytes:
    """The server side of speech: hibari at its own 24 kHz, as int16 PCM."""
    voice = hibari_voice()
    assert voice.sample_rate == PCM_RATE
    audio = voice(text, speed=float(fields.get("speed", 1.0)), seed=0)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class HealthWatcher(threading.Thread):
    """Polls /healthz from before the server is up; holds `gate` shut until it has seen a 503 (the server is
    loading: its STT warm-up waits on the gate), then opens it."""

    def __init__(self, port: int, gate: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.gate, self.seen = port, gate, []

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and 200 not in self.seen:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = None  # not listening yet
            if status and (not self.seen or self.seen[-1] != status):
                self.seen.append(status)
            if status == 503:
                self.gate.set()
            time.sleep(0.02)
        self.gate.set()


@pytest.mark.integration
def test_a_spoken_question_is_answered_aloud_with_every_stage_remote(llama_cpp_server):
    from listen_and_play import talk_with_file
    from tests.conftest import ServerProcess
    from tests.speech import espeak
    from tests.transcribe import transcribe, words

    warmed_up = threading.Event()

    def transcribe_after_the_gate(wav, fields):
        warmed_up.wait(60)
        return whisper_transcribe(wav, fields)

    metrics_port = free_port()
    with RecordingServer(transcribe=transcribe_after_the_gate, speak=hibari_speak) as speech:
        watcher = HealthWatcher(metrics_port, warmed_up)
        watcher.start()
        server = ServerProcess("--stt", "open_api", "--stt_base_url", speech.base_url, "--stt_model_name", "tiny.en",
                               "--llm", "open_api", "--open_api_base_url", llama_cpp_server,
                               "--tts", "open_api", "--tts_base_url", speech.base_url, "--tts_voice", "heart",
                               "--metrics_port", str(metrics_port))
        try:
            watcher.join(30)
            assert watcher.seen == [503, 200]  # loading, then ready
            speech.transcriptions.clear()
            speech.speeches.clear()
            reply, _ = talk_with_file("127.0.0.1", server.recv_port, server.send_port,
                                      espeak("What is the capital of Germany?"), silence_s=20, reply_idle_s=1.5,
                                      timeout_s=90)
            server.wait_for(lambda: server.lines("ASSISTANT:"), 30, "ASSISTANT line")
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        finally:
            started = time.monotonic()
            code = server.stop()
            stopped_in = time.monotonic() - started

    assert code == 0 and stopped_in < 10
    assert reply.first_at is not None and len(reply.audio) / 2 / 16000 > 0.5
    # The question, as the SDK sent it (more than once when a speculative cut came in a pause mid-question and was
    # withdrawn as the voice went on).
    assert speech.transcriptions
    for request in speech.transcriptions:
        assert (request["model"], request["language"], request["file_content_type"]) == ("tiny.en", "en", "audio/wav")
    assert {"capital", "germany"} <= set(words(server.lines("USER:")[-1]))
    said = server.lines("ASSISTANT:")[-1]
    assert "berlin" in said.lower(), said
    assert "berlin" in " ".join(s["input"] for s in speech.speeches).lower()
    assert all(s["voice"] == "heart" and s["response_format"] == "pcm" for s in speech.speeches)
    assert "berlin" in transcribe(reply.audio).lower()  # answered aloud, in hibari's voice through the server
    assert "s2s_turns_total 1.0" in metrics and "s2s_time_to_first_audio_seconds_count 1.0" in metrics
    assert not any(" ERROR " in line for line in server.stderr), server.stderr


@pytest.fixture(scope="module")
def faster_whisper_server(tmp_path_factory):
    """faster-whisper-server (PyPI; nobody here wrote it) serving the bundled tiny.en, on a free loopback port."""
    from STT.faster_whisper_handler import bundled_model_path

    port = free_port()
    command = [sys.executable, "-m", "faster_whisper_server", bundled_model_path(), "--host", "127.0.0.1",
               "--port", str(port)]
    with http_service(command, f"http://127.0.0.1:{port}/health",
                      tmp_path_factory.mktemp("faster_whisper_server") / "server.log", start_timeout_s=60, poll_s=0.3):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.mark.integration
@pytest.mark.parametrize("language", ["en", "auto"])
def test_stt_transcribes_through_a_real_faster_whisper_server(faster_whisper_server, language):
    from tests.speech import espeak
    from tests.transcribe import words

    handler = make_handler("stt", faster_whisper_server, "--language", language)
    transcript, = handler.process(segment(espeak("What is the capital of Germany?").astype(np.float32) / 32768))
    assert {"what", "capital", "germany"} <= set(words(transcript.text)), transcript.text
    assert transcript.language == "en"  # with auto: what the server detected (verbose_json)
