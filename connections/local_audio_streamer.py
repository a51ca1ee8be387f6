"""This machine's microphone and speaker through PortAudio (sounddevice), 16 kHz mono int16.

The audio callbacks only copy and enqueue; the streamer's thread watches the microphone's level
(connections/mic_level.py), feeds the reply to the speaker, and either gates the microphone while the reply
plays (half-duplex, connections/half_duplex.py) or, with an echo canceller, takes the reply's echo out of it and
listens all the time, so the user can cut in (full duplex, connections/full_duplex.py).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

from connections.full_duplex import CleanMicrophone, EchoReference
from connections.half_duplex import HalfDuplexGate, SpeakerBuffer, dac_delay
from connections.mic_level import MicLevelMonitor
from connections.reply_sink import ReplySink
from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError
from utils.metrics import TurnMetrics
from utils.pipeline.base_handler import put_until_stopped
from utils.pipeline.messages import END, AudioFrame, AudioOut, Conversation, ConversationEvents, Turn, is_cancelled
from utils.pipeline.reply_timeline import ReplyProgress

logger = logging.getLogger(__name__)

POLL_S = 0.1  # queue reads time out this often so a stop request is seen quickly
MIC_QUEUE_BLOCKS = 200  # ~6 s at 512 samples: the thread is far faster, a full queue means it is stuck
SPEAKER_AHEAD_S = 2.0  # reply audio queued for the speaker at most; the rest waits upstream
KINDS = {"input": ("microphone", "max_input_channels"), "output": ("speaker", "max_output_channels")}


def import_sounddevice():
    try:
        import sounddevice
    except ImportError as e:
        raise ConfigError("--mode local needs sounddevice: pip install sounddevice") from e
    except OSError as e:  # sounddevice is there but the PortAudio library is not
        raise ConfigError("--mode local needs the PortAudio library: apt-get install libportaudio2 "
                          "(macOS: brew install portaudio)") from e
    return sounddevice


def list_devices(sd=None) -> str:
    """The audio devices PortAudio sees, '>' marking the default input and '<' the default output."""
    sd = sd or import_sounddevice()
    devices = sd.query_devices()
    if len(devices) == 0:
        return "PortAudio finds no audio devices (connect one, or start a sound server such as PulseAudio)"
    return str(devices)


def pick_device(sd, spec: str | None, kind: str) -> int | None:
    """The index of the `kind` ('input'/'output') device `spec` names (an index, or part of its name,
    case-insensitive); None for the system default. One clear ConfigError naming the choices otherwise."""
    what, channels = KINDS[kind]
    devices = [(i, d["name"]) for i, d in enumerate(sd.query_devices()) if d[channels] > 0]
    if not devices:
        raise ConfigError(f"no {what}: PortAudio finds no audio {kind} device (connect one, or start a sound "
                          "server such as PulseAudio)")
    if spec is None:
        return None
    choices = "; ".join(f"{i} '{name}'" for i, name in devices)
    spec = spec.strip()
    if spec.isdigit():
        if int(spec) in dict(devices):
            return int(spec)
        raise ConfigError(f"--{kind}_device {spec}: no {kind} device has that index; {kind} devices: {choices}")
    exact = [i for i, name in devices if name.lower() == spec.lower()]
    matches = exact or [i for i, name in devices if spec.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    problem = "matches no" if not matches else "matches more than one"
    raise ConfigError(f"--{kind}_device '{spec}' {problem} {kind} device; {kind} devices: {choices}")


class LocalAudioStreamer(ConversationEvents):
    """AudioFrame out, AudioOut in (played). One conversation per session. Half-duplex: the microphone is heard
    only while listening and nothing plays. With `echo_canceller` (full duplex): always heard, without the reply's
    echo; the conversation's barge-in pauses, resumes and cuts the reply here (the ConversationEvents below)."""

    name = "LocalAudioStreamer"

    def __init__(self, stop_event: threading.Event, queue_out: queue.Queue, queue_in: queue.Queue,
                 metrics: TurnMetrics, config, sd=None, echo_canceller=None) -> None:
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.queue_in = queue_in
        self.full_duplex = echo_canceller is not None
        self.conversation = Conversation(events=self, barge_in=self.full_duplex)
        # full duplex: the reply is over when it has played (the microphone stays open meanwhile)
        self.conversation.paced_output = self.full_duplex
        self.should_listen = self.conversation.should_listen  # cleared by the VAD, set again by the TTS
        block_s = config.blocksize / SAMPLE_RATE
        reference = EchoReference()
        self.speaker = SpeakerBuffer(max_blocks=max(1, int(SPEAKER_AHEAD_S / block_s)),
                                     reference=reference if self.full_duplex else None)
        # the reply playing: what it says and when, taken whole from the TTS (not only the part the speaker has room
        # for), and how much of it went to the speaker
        self._reply = ReplyProgress()
        self._waiting: deque[AudioOut] = deque()  # taken from the TTS, not yet in the speaker
        self._finishing: Turn | None = None  # its last block is queued: over once the speaker has played it
        self.sink = ReplySink(self.speaker.push, metrics)
        self.gate = HalfDuplexGate(self.speaker, tail_s=config.playback_tail_ms / 1000, margin_s=block_s)
        self.levels = MicLevelMonitor(SAMPLE_RATE)
        self._mic: queue.Queue[tuple[float, bytes]] = queue.Queue(MIC_QUEUE_BLOCKS)
        self._mic_dropped = 0
        # Set by the microphone's first block: PortAudio (through PulseAudio) may take a moment to deliver audio
        # after the stream starts, and words said before that are lost. "ready" is said only after it.
        self.ready = threading.Event()
        self._xruns = 0  # over/underflows PortAudio reported to a callback
        self._input, self._output = self._open(sd or import_sounddevice(), config)
        self.clean_mic = None
        if echo_canceller is not None:
            self.clean_mic = CleanMicrophone(echo_canceller, reference, self._input.latency, self._output.latency)
            logger.info("full duplex: the reply's echo is cancelled (%s); talk over a reply to interrupt it",
                        type(echo_canceller).__name__)

    def _open(self, sd, config):
        """Open (not start) both streams now, so a bad device fails before any thread starts."""
        streams = []
        try:
            for kind, stream_class, callback in (("input", sd.RawInputStream, self._on_input),
                                                 ("output", sd.RawOutputStream, self._on_output)):
                device = pick_device(sd, getattr(config, f"{kind}_device"), kind)
                try:
                    streams.append(stream_class(samplerate=SAMPLE_RATE, channels=1, dtype="int16", blocksize=config.blocksize,
                                                device=device, callback=callback,
                                                latency=getattr(config, "latency", "low")))
                except (sd.PortAudioError, ValueError) as e:
                    what = KINDS[kind][0]
                    raise ConfigError(f"cannot open the {what} at 16 kHz mono ({e}); choose another with "
                                      f"--{kind}_device (see --list_devices)") from e
                name = sd.query_devices(streams[-1].device)["name"]
                logger.info("%s: '%s' (latency %.0f ms)", KINDS[kind][0], name, streams[-1].latency * 1000)
        except ConfigError:
            for stream in streams:
                stream.close(ignore_errors=True)
            raise
        return streams

    # --- PortAudio's threads: copy and enqueue, nothing else ---

    def _on_input(self, indata, frames, time_info, status) -> None:
        if status:
            self._xruns += 1
        self.ready.set()
        try:
            self._mic.put_nowait((time.monotonic(), bytes(indata)))
        except queue.Full:
            self._mic_dropped += 1

    def _on_output(self, outdata, frames, time_info, status) -> None:
        if status:
            self._xruns += 1
        self.speaker.fill(outdata, time.monotonic(), dac_delay(time_info, self._output.latency))

    # --- the streamer's thread ---

    def run(self) -> None:
        try:
            self._input.start()
            self._output.start()
            while not self.stop_event.is_set():
                if not self._feed_speaker():
                    break  # END: the stages behind us have stopped
                self._take_mic()
        except Exception:
            logger.exception("%s failed; stopping local audio", self.name)
        finally:
            self.conversation.end()  # whatever is still in flight belongs to nobody now
            for stream in (self._input, self._output):
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            # (benchmarks/barge_in.py reports it: small blocks must not cost over/underruns)
            logger.info("local audio: %d microphone blocks dropped, %d over/underruns", self._mic_dropped, self._xruns)
            self._put(END)

    def _feed_speaker(self) -> bool:
        """Take what the TTS has made, then move reply audio to the speaker while it has room; False once END arrives."""
        self._finish_played_reply()
        while True:
            try:
                item = self.queue_in.get_nowait()
            except queue.Empty:
                break
            if item is END:
                return False
            if is_cancelled(item):
                continue  # the user cut this reply short
            self._reply.queued(item.turn, item.text, item.pcm)
            self._waiting.append(item)
        while self._waiting and self.speaker.has_room():
            item = self._waiting.popleft()
            if is_cancelled(item):
                continue
            self._reply.went_out(item.turn, item.pcm)
            self.sink.deliver(item)
            if item.last and self.full_duplex:
                self._finishing = item.turn
        return True

    def _finish_played_reply(self) -> None:
        turn = self._finishing
        if turn is not None and not self.speaker.busy and time.monotonic() >= self.speaker.sounding_until:
            self._finishing = None
            self.conversation.reply_finished(turn)

    # --- barge-in (ConversationEvents, on the VAD's thread) ---

    def reply_paused(self, turn: Turn) -> None:
        self.speaker.hold()

    def reply_resumed(self, turn: Turn) -> None:
        self.speaker.release()

    def interrupted(self, turn: Turn) -> None:
        self.speaker.flush()
        if self._finishing is turn:
            self._finishing = None

    def heard(self, turn: Turn) -> str | None:
        """The words that have left the speaker: what was queued, less what is still queued or in the device."""
        in_device_s = max(0.0, self.speaker.sounding_until - time.monotonic())
        return self._reply.heard(turn, 1000 * (self.speaker.queued_s + in_device_s))

    def _take_mic(self) -> None:
        """Wait for the next microphone block (this paces the loop), then handle all that have arrived."""
        try:
            captured_at, pcm = self._mic.get(timeout=POLL_S)
        except queue.Empty:
            return
        while True:
            warning = self.levels.push(pcm)
            if warning:
                logger.warning(warning)
            if self.clean_mic is not None:
                cleaned = self.clean_mic.process(pcm, captured_at)
                if cleaned:
                    self._put(AudioFrame(cleaned, self.conversation, captured_at))
            elif self.gate.mic_open(captured_at, self.should_listen.is_set()):
                self._put(AudioFrame(pcm, self.conversation, captured_at))
            try:
                captured_at, pcm = self._mic.get_nowait()
            except queue.Empty:
                return

    def _put(self, item) -> None:
        put_until_stopped(self.queue_out, item, self.stop_event)
