"""--mode local: the half-duplex logic with fakes (fast), then real PortAudio devices on a PulseAudio room
the test owns: a spoken question played into the room, the assistant's reply recorded from it."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from connections.half_duplex import HalfDuplexGate, SpeakerBuffer
from connections.local_audio_streamer import LocalAudioStreamer, import_sounddevice, pick_device
from connections.mic_level import MicLevelMonitor
from tests.conftest import ROOT, ServerProcess
from tests.speech import espeak, write_wav
from tests.transcribe import transcribe, word_recall, words
from utils.errors import ConfigError
from utils.pipeline.messages import END, AudioFrame, AudioOut, Turn

BLOCK = 512
LOUD = (np.sin(np.arange(BLOCK) / 16000 * 2 * np.pi * 440) * 8000).astype("<i2").tobytes()
QUIET = bytes(2 * BLOCK)


# --- the speaker buffer and the gate ---

def test_speaker_copies_queued_audio_pads_with_silence_and_knows_when_it_is_heard():
    speaker = SpeakerBuffer(max_blocks=4)
    speaker.push(b"\x01\x00" * 300)
    out = bytearray(b"\xff" * 2 * BLOCK)
    assert speaker.fill(out, now=10.0, output_delay_s=0.1) == 600
    assert out[:600] == b"\x01\x00" * 300 and out[600:] == bytes(2 * BLOCK - 600)
    assert speaker.sounding_until == pytest.approx(10.0 + 0.1 + 300 / 16000)
    assert not speaker.busy
    # Nothing queued: silence, and the time the last reply sample is heard stays put.
    assert speaker.fill(out, now=11.0, output_delay_s=0.1) == 0 and out == bytes(2 * BLOCK)
    assert speaker.sounding_until == pytest.approx(10.0 + 0.1 + 300 / 16000)


def test_speaker_keeps_the_rest_of_a_block_bigger_than_the_device_buffer():
    speaker = SpeakerBuffer(max_blocks=4)
    speaker.push(bytes(range(200)))
    first, second = bytearray(128), bytearray(128)
    speaker.fill(first, 0.0, 0.0)
    assert speaker.busy  # 72 bytes still to play
    speaker.fill(second, 0.0, 0.0)
    assert bytes(first + second[:72]) == bytes(range(200)) and not speaker.busy


def test_speaker_room_is_bounded():
    speaker = SpeakerBuffer(max_blocks=2)
    speaker.push(LOUD), speaker.push(LOUD)
    assert not speaker.has_room()


def test_gate_opens_only_when_listening_and_the_room_is_clear_of_the_reply():
    speaker = SpeakerBuffer(max_blocks=8)
    gate = HalfDuplexGate(speaker, tail_s=0.3, margin_s=0.032)
    assert gate.mic_open(captured_at=1.0, listening=True)  # nothing ever played
    assert not gate.mic_open(captured_at=1.0, listening=False)  # a reply is being prepared

    speaker.push(LOUD)
    assert not gate.mic_open(captured_at=99.0, listening=True)  # reply queued, not yet taken by the device
    speaker.fill(bytearray(2 * BLOCK), now=5.0, output_delay_s=0.1)  # heard until 5.0 + 0.1 + 0.032
    heard_until = 5.0 + 0.1 + BLOCK / 16000
    assert not gate.mic_open(captured_at=5.05, listening=True)  # while it plays
    assert not gate.mic_open(captured_at=heard_until + 0.032 + 0.29, listening=True)  # inside the tail
    assert gate.mic_open(captured_at=heard_until + 0.032 + 0.31, listening=True)
    assert not gate.mic_open(captured_at=heard_until + 1.0, listening=False)


# --- microphone level ---

def blocks_of(pcm: bytes, seconds: float):
    return [pcm] * int(seconds * 16000 / (len(pcm) // 2))


def test_a_silent_microphone_is_reported_once_per_silent_stretch():
    monitor = MicLevelMonitor(silent_s=10)
    warnings = [w for b in blocks_of(QUIET, 25) if (w := monitor.push(b))]
    assert len(warnings) == 1 and "silent" in warnings[0] and "--input_device" in warnings[0]
    assert monitor.push(LOUD) is None
    assert [w for b in blocks_of(QUIET, 11) if (w := monitor.push(b))] == [warnings[0]]


def test_a_faint_but_live_microphone_is_not_silent():
    monitor = MicLevelMonitor(silent_s=10)
    faint = (np.random.default_rng(0).normal(0, 40, BLOCK)).astype("<i2").tobytes()  # about -58 dBFS peaks
    assert [w for b in blocks_of(faint, 20) if (w := monitor.push(b))] == []


def test_clipping_is_reported_when_it_repeats_and_not_too_often():
    clipped = np.full(BLOCK, 32767, "<i2").tobytes()
    monitor = MicLevelMonitor(clip_blocks=3, clip_window_s=3, repeat_s=30)
    assert monitor.push(clipped) is None and monitor.push(LOUD) is None and monitor.push(clipped) is None
    warning = monitor.push(clipped)
    assert warning and "clips" in warning
    assert [w for b in [clipped] * 100 if (w := monitor.push(b))] == []  # within 30 s: once is enough
    later = [w for b in blocks_of(LOUD, 30) + [clipped] * 3 if (w := monitor.push(b))]
    assert later == [warning]


# --- choosing devices ---

class FakeSoundDevice:
    """The parts of the sounddevice module the streamer uses, with scripted devices and streams."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices=None, fail_open=None):
        self.devices = devices if devices is not None else [
            {"name": "pulse", "max_input_channels": 32, "max_output_channels": 32},
            {"name": "USB Headset Mic", "max_input_channels": 1, "max_output_channels": 0},
            {"name": "default", "max_input_channels": 32, "max_output_channels": 32},
        ]
        self.fail_open = fail_open
        self.streams = []
        outer = self

        class Stream:
            def __init__(self, kind, samplerate, channels, dtype, blocksize, device, callback, latency):
                if outer.fail_open == kind:
                    raise outer.PortAudioError("Invalid sample rate [PaErrorCode -9997]")
                if latency not in ("low", "high"):
                    raise outer.PortAudioError(f"latency {latency!r}")
                self.kind, self.callback, self.blocksize, self.asked_latency = kind, callback, blocksize, latency
                self.device = 0 if device is None else device  # like PortAudio: the default's index
                self.latency, self.events = 0.05, []
                outer.streams.append(self)

            def start(self):
                self.events.append("start")

            def abort(self, ignore_errors=False):
                self.events.append("abort")

            def close(self, ignore_errors=False):
                self.events.append("close")

        self.RawInputStream = lambda **kw: Stream("input", **kw)
        self.RawOutputStream = lambda **kw: Stream("output", **kw)

    def query_devices(self, device=None):
        return self.devices if device is None else self.devices[device]

    def stream(self, kind):
        return next(s for s in self.streams if s.kind == kind)


@pytest.mark.parametrize("spec, kind, expected", [
    (None, "input", None), ("1", "input", 1), ("usb", "input", 1), ("Default", "output", 2), ("0", "output", 0),
])
def test_a_device_is_named_by_index_or_part_of_its_name(spec, kind, expected):
    assert pick_device(FakeSoundDevice(), spec, kind) == expected


@pytest.mark.parametrize("spec, kind, problem", [
    ("1", "output", "no output device has that index"),
    ("headphones", "output", "matches no output device"),
    ("u", "input", "matches more than one input device"),
])
def test_a_wrong_device_names_the_choices(spec, kind, problem):
    with pytest.raises(ConfigError) as e:
        pick_device(FakeSoundDevice(), spec, kind)
    assert problem in str(e.value) and "'pulse'" in str(e.value) and "\n" not in str(e.value)
    assert ("'USB Headset Mic'" in str(e.value)) == (kind == "input")


def test_no_device_at_all_says_so():
    with pytest.raises(ConfigError, match="no microphone: PortAudio finds no audio input device"):
        pick_device(FakeSoundDevice(devices=[]), None, "input")


def test_missing_portaudio_or_sounddevice_is_one_line_saying_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(ConfigError, match="pip install sounddevice"):
        import_sounddevice()
    # sounddevice raises OSError when it cannot find the PortAudio library
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.delitem(sys.modules, "sounddevice")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="apt-get install libportaudio2"):
        import_sounddevice()


# --- the streamer on a fake sounddevice ---

def local_config(**overrides):
    values = dict(input_device=None, output_device=None, list_devices=False, blocksize=BLOCK, playback_tail_ms=50)
    return SimpleNamespace(**{**values, **overrides})


class RecordingMetrics:
    def __init__(self):
        self.sent, self.done = [], []

    def audio_sent(self, turn):
        self.sent.append(turn.id)

    def turn_done(self, turn):
        self.done.append(turn.id)


class Rig:
    def __init__(self, **config):
        self.sd = FakeSoundDevice()
        self.stop = threading.Event()
        self.mic_out, self.replies = queue.Queue(), queue.Queue()
        self.metrics = RecordingMetrics()
        self.streamer = LocalAudioStreamer(self.stop, self.mic_out, self.replies, self.metrics,
                                           local_config(**config), sd=self.sd)
        self.listen = self.streamer.conversation.should_listen  # what the VAD clears and the TTS sets
        self.thread = threading.Thread(target=self.streamer.run, daemon=True)

    def speak(self, pcm=LOUD):
        self.sd.stream("input").callback(pcm, BLOCK, None, 0)

    def device_plays(self, dac_delay=0.05) -> bytes:
        out = bytearray(2 * BLOCK)
        self.sd.stream("output").callback(out, BLOCK, SimpleNamespace(currentTime=1.0, outputBufferDacTime=1.0 + dac_delay), 0)
        return bytes(out)

    def frames(self, wait=0.3):
        """What reached the VAD within `wait` seconds."""
        got, deadline = [], time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                got.append(self.mic_out.get(timeout=0.02))
            except queue.Empty:
                pass
        return got


def wait_until(condition, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_streamer_listens_until_a_reply_plays_then_again_after_the_tail():
    rig = Rig(playback_tail_ms=50)
    rig.thread.start()
    wait_until(rig.listen.is_set)  # local mode listens from the start
    rig.speak()
    (frame,) = rig.frames()
    assert isinstance(frame, AudioFrame) and frame.pcm == LOUD and frame.conversation is rig.streamer.conversation

    rig.listen.clear()  # the VAD heard a question
    rig.speak()
    assert rig.frames() == []

    turn = Turn(rig.streamer.conversation, speech_end=time.monotonic())
    rig.replies.put(AudioOut(LOUD, turn))
    rig.replies.put(AudioOut(b"", turn, last=True))
    wait_until(lambda: rig.metrics.done == [turn.id])
    assert rig.metrics.sent == [turn.id]
    rig.listen.set()  # TTS is done producing: the reply has not played yet
    rig.speak()
    assert rig.frames() == []  # queued for the speaker: closed
    assert rig.device_plays(dac_delay=0.2) == LOUD
    rig.speak()
    assert rig.frames(wait=0.1) == []  # still in the air
    time.sleep(0.2 + BLOCK / 16000 + BLOCK / 16000 + 0.05)
    rig.speak()
    assert [f.pcm for f in rig.frames()] == [LOUD]

    rig.stop.set()
    rig.thread.join(2)
    assert not rig.thread.is_alive()
    assert rig.mic_out.get_nowait() is END
    assert all(s.events == ["start", "abort", "close"] for s in rig.sd.streams)
    assert rig.streamer.conversation.ended


def test_what_was_heard_spreads_a_sentence_over_all_its_audio_not_the_part_the_speaker_holds():
    rig = Rig()
    rig.thread.start()
    turn = Turn(rig.streamer.conversation, speech_end=time.monotonic())
    blocks = 125  # a 4 s sentence: longer than the speaker holds (SPEAKER_AHEAD_S)
    for i in range(blocks):
        rig.replies.put(AudioOut(LOUD, turn, text=" ".join(["word"] * 40) if i == 0 else ""))
    wait_until(lambda: not rig.streamer.speaker.has_room())
    for _ in range(31):  # ~1 s plays; the streamer refills the speaker behind it
        rig.device_plays()
        time.sleep(0.002)
    wait_until(lambda: not rig.streamer.speaker.has_room())
    heard = rig.streamer.heard(turn).split()
    # ~0.9 s of 4 s heard (less what is still in the device): ~9 of 40 words; spread over the ~3 s given to the
    # speaker so far, they would be 12
    assert 8 <= len(heard) <= 10, len(heard)
    rig.stop.set()
    rig.thread.join(2)


def test_streamer_stops_on_end_from_the_pipeline_and_passes_end_on():
    rig = Rig()
    rig.thread.start()
    rig.replies.put(END)
    rig.thread.join(2)
    assert not rig.thread.is_alive() and rig.mic_out.get_nowait() is END


def test_streamer_reports_a_stuck_reader_not_a_hang():
    rig = Rig()
    for _ in range(300):  # nobody drains the microphone queue (thread not started)
        rig.speak()
    assert rig.streamer._mic_dropped == 300 - 200


@pytest.mark.parametrize("config, fail_open, message", [
    ({"output_device": "nope"}, None, "--output_device 'nope' matches no output device"),
    ({}, "output", "cannot open the speaker at 16 kHz mono (Invalid sample rate"),
])
def test_a_device_that_cannot_be_opened_fails_at_construction_and_closes_what_was_opened(config, fail_open, message):
    sd = FakeSoundDevice(fail_open=fail_open)
    with pytest.raises(ConfigError) as e:
        LocalAudioStreamer(threading.Event(), queue.Queue(), queue.Queue(), RecordingMetrics(),
                           local_config(**config), sd=sd)
    assert str(e.value).startswith(message)
    assert [s.events for s in sd.streams] == [["close"]]  # the microphone, opened first


# --- real PortAudio devices in a PulseAudio room ---

def run_pipeline(*flags, timeout=60):
    return subprocess.run([sys.executable, "s2s_pipeline.py", *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_list_devices_shows_the_rooms_devices(in_room):
    result = run_pipeline("--mode", "local", "--list_devices")
    assert result.returncode == 0, result.stderr
    assert "pulse" in result.stdout and "default" in result.stdout


def test_an_unknown_device_is_one_line_naming_the_devices_and_exit_2(in_room):
    result = run_pipeline("--mode", "local", "--input_device", "no such mic")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --input_device 'no such mic' matches no input device; input devices: 0 'pulse'; "
                      "1 'default'"], result.stderr
    assert "Traceback" not in result.stderr


def test_no_sound_server_means_no_device_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nobody-listens-here")
    result = run_pipeline("--mode", "local")
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: no microphone: PortAudio finds no audio input device (connect one, or start a sound server "
        "such as PulseAudio)"], result.stderr


QUESTION = "What is the capital of Germany?"
SOUND = 300  # int16 peak that counts as sound; the null sink's room is digital silence otherwise
SELF_ANSWER_WAIT_S = 8.0  # hearing its own reply would give a new USER line within ~3 s of the reply's end


def sound_spans(samples: np.ndarray, hop: int = 160) -> np.ndarray:
    """Start sample of every 10 ms hop that holds sound."""
    n = len(samples) // hop
    peaks = np.abs(samples[:n * hop].astype(np.int32)).reshape(n, hop).max(axis=1)
    return np.flatnonzero(peaks >= SOUND) * hop


def read_room(path) -> np.ndarray:
    data = path.read_bytes()
    return np.frombuffer(data[:len(data) - len(data) % 2], dtype="<i2")


@pytest.mark.integration
def test_the_assistant_hears_the_room_answers_once_and_is_understood(in_room, tmp_path):
    question = espeak(QUESTION)
    loud = np.flatnonzero(np.abs(question.astype(np.int32)) >= SOUND)
    question_sound_s = (loud[-1] - loud[0]) / 16000
    write_wav(tmp_path / "question.wav", question)

    metrics_file = tmp_path / "turns.jsonl"
    server = ServerProcess("--mode", "local", "--metrics_file", str(metrics_file), ready_timeout=180)
    recorder = in_room.record(tmp_path / "room.raw")
    try:
        time.sleep(1.0)
        in_room.play(tmp_path / "question.wav")
        server.wait_for(lambda: server.lines("ASSISTANT:"), 120, "an ASSISTANT line")

        def reply_has_ended():
            sound = sound_spans(read_room(tmp_path / "room.raw"))
            total = len(read_room(tmp_path / "room.raw"))
            question_end = sound[0] + question_sound_s * 16000 if len(sound) else total
            reply = sound[sound > question_end + 800]
            return len(reply) and total - reply[-1] > 1.5 * 16000

        server.wait_for(reply_has_ended, 60, "the reply to be played into the room")
        time.sleep(SELF_ANSWER_WAIT_S)
    finally:
        recorder.terminate()
        recorder.wait(5)
        returncode = server.stop()

    assert returncode == 0, "\n".join(server.stderr[-30:])
    users, replies = server.lines("USER:"), server.lines("ASSISTANT:")
    assert len(users) == 1, f"it answered {len(users)} times (heard itself?): {users}"
    # It heard the question through PortAudio (and the room's resampling), word for word or nearly.
    assert {"what", "capital", "germany"} <= set(words(users[0])), users[0]
    assert word_recall(QUESTION, users[0]) >= 0.8, users[0]
    assert len(replies) == 1 and len(metrics_file.read_text().splitlines()) == 1

    room_audio = read_room(tmp_path / "room.raw")
    sound = sound_spans(room_audio)
    question_end = sound[0] + int(question_sound_s * 16000)
    reply = sound[sound > question_end + 800]  # 50 ms: the question's own last hop
    assert len(reply), "no reply audio in the room"
    start, end = reply[0], reply[-1] + 160
    assert (end - start) / 16000 > 0.5
    heard = transcribe(room_audio[start:end + 3200])
    assert word_recall(replies[0], heard) >= 0.6, f"assistant said {replies[0]!r}, the room heard {heard!r}"
    assert {"berlin"} & set(words(heard)) or len(words(heard)) >= 3, heard

    latency_ms = 1000 * (start - question_end) / 16000
    server_says = [line for line in server.stderr if "first audio" in line]
    print(f"\nlocal mode: first reply audio in the room {latency_ms:.0f} ms after the question ended; "
          f"server: {server_says[-1] if server_says else '-'}; reply {(end - start) / 16000:.1f} s: {heard!r}")


def test_the_streams_are_opened_at_the_latency_asked_for():
    assert {s.asked_latency for s in Rig().sd.streams} == {"low"}  # the default: a reply talked over stops sooner
    assert {s.asked_latency for s in Rig(latency="high").sd.streams} == {"high"}
