#!/usr/bin/env python
"""The thin client of the socket server: your microphone and speaker, or a WAV file in and out.

    python listen_and_play.py --host <server>                  # talk through the microphone
    python listen_and_play.py --input_file question.wav --output_file reply.wav   # headless

Protocol: raw 16 kHz mono int16 little-endian audio; the client sends on port 12345 and receives
on port 12346. Half-duplex: nothing is sent while the reply plays, so the server never hears itself. With
--full_duplex the microphone stays open, its echo cancelled, and the server's control frames on the audio connection
(connections/handshake.py) hold, resume or drop the reply's sound the moment you talk over it.
"""
from __future__ import annotations

import argparse
import logging
import os
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from connections import handshake
from connections.full_duplex import CleanMicrophone, EchoReference
from connections.half_duplex import HalfDuplexGate, SpeakerBuffer, dac_delay
from utils.audio import BYTES_PER_SAMPLE, SAMPLE_RATE

logger = logging.getLogger("listen_and_play")

VOICE_WINDOW = SAMPLE_RATE * 30 // 1000  # samples in the 30 ms windows voiced_end() measures
# Samples per device block with --full_duplex (8 ms). Each stream buffers about two blocks, and a reply the user talks
# over stops only once what the speaker has buffered has played: in the PulseAudio room a click went from the output
# callback to the input callback in ~44 ms at 128-sample blocks against ~65 at 256 (20 ms of it the room's own
# loopback), and the voice fell silent a median 186 ms after the user's onset (22 cut-ins, 3 runs) against 215 (19).
FULL_DUPLEX_BLOCKSIZE = 128


class ClientError(Exception):
    pass


def connect_pair(host: str, send_port: int, recv_port: int, full_duplex: bool = False) -> tuple[socket.socket, socket.socket]:
    """Both connections, paired on the server by the token it writes on the first (several clients
    may connect at once); a server that sends none pairs them by arrival order. `full_duplex`: the token goes
    back as S2S2, telling the server we cancel our echo and may talk over its replies."""
    send_sock = connect(host, send_port)
    try:
        token = handshake.read_token(send_sock)
    except handshake.Refused as e:  # refused (full, or too many from this address): say why
        send_sock.close()
        raise ClientError(f"the server said: {e}") from None
    recv_sock = connect(host, recv_port)
    if token:
        recv_sock.sendall(handshake.full_duplex(token) if full_duplex else token)
    return send_sock, recv_sock


def why_closed(send_sock: socket.socket) -> str | None:
    """The reason the server gave for ending the conversation (connections/handshake.py), if it gave one."""
    try:
        return handshake.read_notice(send_sock, wait_s=0.3)
    except OSError:
        return None


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise ClientError(f"cannot connect to {host}:{port} ({e.strerror or e}); is s2s_pipeline.py running there, "
                          "and done loading its models?") from None
    sock.settimeout(0.2)
    return sock


@dataclass
class Reply:
    """What the server sent back, and when (time.monotonic())."""

    audio: bytearray = field(default_factory=bytearray)
    first_at: float | None = None
    last_at: float | None = None
    play_end: float = 0.0  # when the audio received so far has finished playing
    # (bytes, time.monotonic()) of every block as it arrived: lets a benchmark find when a given sample came and played
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    # the server closed the connection, or it broke, before the reply's end was heard: the audio is partial
    cut_off: bool = False
    closed_because: str | None = None  # what the server said when it ended the conversation

    def add(self, data: bytes) -> None:
        now = time.monotonic()
        self.arrivals.append((len(data), now))
        self.first_at = self.first_at or now
        self.last_at = now
        # Each block plays after the previous one, and never before it arrived.
        self.play_end = max(self.play_end, now) + len(data) / BYTES_PER_SAMPLE / SAMPLE_RATE
        self.audio.extend(data)

    def playing_until(self, tail_s: float) -> float:
        return self.play_end + tail_s if self.first_at is not None else 0.0


def receive(sock: socket.socket, on_data, stop: threading.Event) -> None:
    """Hand every block the server sends to `on_data` until the server closes or `stop` is set."""
    try:
        while not stop.is_set():
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                break
            on_data(data)
    except OSError:
        pass
    finally:
        stop.set()


def obey_server(sock: socket.socket, speaker: SpeakerBuffer, stop: threading.Event, notices: list[str]) -> None:
    """Full duplex: read the server's frames on the audio connection (connections/handshake.py). HOLD, RELEASE and
    FLUSH go to the speaker as they come (the reply's sound stops the moment the user may be cutting in); a close
    notice's reason is put in `notices`. Ends with the connection, or once `stop` is set and nothing more comes."""
    reader = handshake.MessageReader()
    actions = {handshake.HOLD: speaker.hold, handshake.RELEASE: speaker.release, handshake.FLUSH: speaker.flush}
    try:
        while True:
            try:
                data = sock.recv(4096)
            except socket.timeout:
                if stop.is_set():
                    return
                continue
            if not data:
                return
            for kind, value in reader.feed(data):
                if kind == "control" and value in actions:
                    actions[value]()
                elif kind == "notice":
                    notices.append(str(value))
                else:
                    logger.warning("the server sent a frame this client does not know (%s %s)", kind, value)
    except OSError:
        pass


def load_wav(path: str) -> np.ndarray:
    """int16 mono at 16 kHz, whatever the file's format."""
    import soundfile as sf

    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises its own error types
        raise ClientError(f"cannot read {path}: {e}") from None
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def voiced_end(audio: np.ndarray) -> int:
    """Where the question ends for a listener: the end of its last voiced 30 ms window, so trailing silence
    in a file does not count as question. A window is voiced when its RMS exceeds 10% of the loudest
    window's (-20 dB: whatever the recording level) and 0.1% of full scale (digital silence and dither
    stay below). A file with no voice at all ends where the file ends."""
    windows = len(audio) // VOICE_WINDOW + (len(audio) % VOICE_WINDOW > 0)
    padded = np.zeros(windows * VOICE_WINDOW, dtype=np.float64)
    padded[:len(audio)] = audio
    rms = np.sqrt(np.mean(padded.reshape(windows, VOICE_WINDOW) ** 2, axis=1))
    voiced = np.flatnonzero(rms > max(0.1 * rms.max(initial=0.0), 0.001 * 32768))
    return min(len(audio), (int(voiced[-1]) + 1) * VOICE_WINDOW) if len(voiced) else len(audio)


def talk_with_file(host: str, send_port: int, recv_port: int, audio: np.ndarray, chunk_bytes=1024,
                   silence_s=30.0, reply_idle_s=2.0, tail_s=0.3, timeout_s=60.0) -> tuple[Reply, float]:
    """Stream `audio` at real-time pace, then silence, until the reply has ended.
    Returns the reply and the monotonic time the question's last voiced sample was sent (see voiced_end)."""
    return converse(host, send_port, recv_port, [audio], chunk_bytes, silence_s, reply_idle_s, tail_s, timeout_s)[0]


def converse(host: str, send_port: int, recv_port: int, questions: list[np.ndarray], chunk_bytes=1024,
             silence_s=30.0, reply_idle_s=2.0, tail_s=0.3, timeout_s=60.0) -> list[tuple[Reply, float]]:
    """Ask each question in turn on one connection (one conversation), like a person: say it, then stay
    quiet (streaming silence) until the reply has been heard in full. Returns (reply, question end) per question."""
    send_sock, recv_sock = connect_pair(host, send_port, recv_port)
    stop, current = threading.Event(), [Reply()]
    receiver = threading.Thread(target=receive, args=(recv_sock, lambda data: current[0].add(data), stop), daemon=True)
    receiver.start()
    results = []
    try:
        for audio in questions:
            reply = current[0] = Reply()
            question_end = time.monotonic()
            try:
                question_end = _say(send_sock, reply, stop, audio, chunk_bytes, silence_s, reply_idle_s, tail_s, timeout_s)
            except OSError as e:
                logger.warning("connection to the server lost: %s", e.strerror or e)
                reply.cut_off = True
                stop.set()
            results.append((reply, question_end))
            if stop.is_set():
                if reply.cut_off:
                    reply.closed_because = why_closed(send_sock)
                break
    finally:
        stop.set()
        receiver.join(1.0)
        send_sock.close()
        recv_sock.close()
    return results


def _say(sock, reply: Reply, stop: threading.Event, audio: np.ndarray, chunk_bytes: int, silence_s: float,
         reply_idle_s: float, tail_s: float, timeout_s: float) -> float:
    """Say `audio`, then stay quiet until the reply has been heard. Returns when the last voiced sample was sent."""
    samples_per_chunk = chunk_bytes // BYTES_PER_SAMPLE
    stream = np.concatenate([audio.astype("<i2"), np.zeros(int(silence_s * SAMPLE_RATE), dtype="<i2")])
    voice_end = voiced_end(audio)
    question_end = None
    started = time.monotonic()
    sent = 0
    while not stop.is_set():
        now = time.monotonic()
        if now - started > timeout_s:
            break
        if reply.first_at and now > reply.playing_until(tail_s) and now - reply.last_at > reply_idle_s:
            break  # the reply has been heard in full
        if now < reply.playing_until(tail_s):
            time.sleep(0.01)  # half-duplex: quiet while the reply plays
            continue
        if sent >= len(stream):
            time.sleep(0.01)
            continue
        due = started + sent / SAMPLE_RATE
        if now < due:
            time.sleep(min(due - now, 0.05))
            continue
        chunk = stream[sent:sent + samples_per_chunk]
        sock.sendall(chunk.tobytes())
        sent += len(chunk)
        if question_end is None and sent >= voice_end:
            question_end = time.monotonic()
    else:
        # Only the receiver sets `stop` while we talk: the server closed the connection (or it broke)
        # before the reply's end was heard.
        reply.cut_off = True
    return question_end or time.monotonic()


def talk_with_devices(host: str, send_port: int, recv_port: int, chunk_bytes=1024, tail_s=0.3,
                      full_duplex: bool = False, latency: str = "low") -> None:
    try:
        import sounddevice as sd
    except OSError as e:  # the PortAudio library itself is missing
        raise ClientError(f"cannot use audio devices ({e}); install PortAudio (Debian: apt-get install libportaudio2) "
                          "or use --input_file/--output_file") from None
    for kind, what in (("input", "microphone"), ("output", "speaker")):
        try:
            sd.query_devices(kind=kind)
        except sd.PortAudioError:
            raise ClientError(f"no {what} found (devices: {_device_names(sd) or 'none'}); "
                              "use --input_file/--output_file on a machine without audio") from None
    canceller = None
    if full_duplex:
        from utils.echo_cancel import load_echo_canceller

        canceller = load_echo_canceller("webrtc")  # None after one warning line: half-duplex, as without the flag
    send_sock, recv_sock = connect_pair(host, send_port, recv_port, full_duplex=canceller is not None)
    stop = threading.Event()
    to_send: queue.Queue[tuple[float, bytes]] = queue.Queue(maxsize=500)
    blocksize = chunk_bytes // BYTES_PER_SAMPLE
    if canceller is not None:  # as local mode: smaller blocks hear the user and stop a reply sooner
        blocksize = min(blocksize, FULL_DUPLEX_BLOCKSIZE)
    # The server's own speaker buffer and half-duplex gate (--mode local): the microphone stays closed while the
    # reply waits for the speaker and until tail_s after its last sample was heard. Full duplex: the microphone is
    # always open, the reply's echo taken out of it (connections/full_duplex.py).
    reference = EchoReference() if canceller is not None else None
    speaker = SpeakerBuffer(max_blocks=0, reference=reference)  # unbounded: the server sends ahead of playback
    gate = HalfDuplexGate(speaker, tail_s=tail_s, margin_s=blocksize / SAMPLE_RATE)
    clean = None
    xruns = [0, 0]  # input overflows, output underflows: each costs the echo canceller its alignment for a while
    opened = False

    def on_input(indata, frames, time_info, status):
        if status.input_overflow:
            xruns[0] += 1
        if canceller is not None or gate.mic_open(time.monotonic(), listening=True):
            try:
                to_send.put_nowait((time.monotonic(), bytes(indata)))
            except queue.Full:
                pass

    def on_output(outdata, frames, time_info, status):
        if status.output_underflow:
            xruns[1] += 1
        speaker.fill(outdata, time.monotonic(), dac_delay(time_info, speaker_stream.latency))

    receiver = threading.Thread(target=receive, args=(recv_sock, speaker.push, stop), daemon=True)
    notices: list[str] = []
    controls = threading.Thread(target=obey_server, args=(send_sock, speaker, stop, notices), daemon=True) \
        if canceller is not None else None
    try:
        speaker_stream = sd.RawOutputStream(samplerate=SAMPLE_RATE, channels=1, dtype="int16", blocksize=blocksize,
                                            latency=latency, callback=on_output)
        mic_stream = sd.RawInputStream(samplerate=SAMPLE_RATE, channels=1, dtype="int16", blocksize=blocksize,
                                       latency=latency, callback=on_input)
        logger.info("microphone (latency %.0f ms) and speaker (latency %.0f ms), %d-sample blocks",
                    1000 * mic_stream.latency, 1000 * speaker_stream.latency, blocksize)
        if canceller is not None:
            clean = CleanMicrophone(canceller, reference, mic_stream.latency, speaker_stream.latency)
        opened = True
        with mic_stream, speaker_stream:
            receiver.start()
            if controls is not None:
                controls.start()
            print("Listening. Speak; Ctrl-C to quit." + (" Talk over a reply to interrupt it." if clean else ""),
                  file=sys.stderr)
            while not stop.is_set():
                try:
                    captured_at, pcm = to_send.get(timeout=0.2)
                except queue.Empty:
                    continue
                send_sock.sendall(clean.process(pcm, captured_at) if clean is not None else pcm)
        if controls is not None:
            stop.set()
            controls.join(1.0)  # it reads the close notice, if the server sent one
            because = notices[-1] if notices else None
        else:
            because = why_closed(send_sock)
    except sd.PortAudioError as e:
        raise ClientError(f"audio device problem: {e}; see python -m sounddevice for the devices") from None
    except OSError as e:
        raise ClientError(f"connection to the server lost: {e.strerror or e}") from None
    finally:
        stop.set()
        send_sock.close()
        recv_sock.close()
        if opened:  # said on the way out, Ctrl-C included (benchmarks/barge_in.py reports it)
            logger.info("devices: %d microphone overflows and %d speaker underruns (over/underruns)", *xruns)
    print(f"The server closed the connection{': ' + because if because else ''}.", file=sys.stderr)


def _device_names(sd) -> str:
    return ", ".join(d["name"] for d in sd.query_devices())


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="localhost", help="the server's address")
    p.add_argument("--send_port", type=int, default=12345, help="server port that receives our audio")
    p.add_argument("--recv_port", type=int, default=12346, help="server port that sends the reply")
    p.add_argument("--list_play_chunk_size", type=int, default=1024, help="bytes per chunk sent")
    p.add_argument("--full_duplex", action="store_true",
                   help="keep the microphone open during replies, their echo cancelled (WebRTC AEC3: pip install "
                        "livekit), so you can interrupt one by talking over it")
    p.add_argument("--latency", choices=("low", "high"), default="low",
                   help="PortAudio latency of the microphone and speaker: 'low' (a reply you talk over stops sooner) "
                        "or 'high' (more buffering, for a device that crackles at low)")
    p.add_argument("--input_file", help="a WAV file to say instead of the microphone (any rate; mono mix)")
    p.add_argument("--output_file", help="with --input_file: write the reply here as a 16 kHz WAV")
    p.add_argument("--timeout_s", type=float, default=60.0, help="with --input_file: give up after this long")
    p.add_argument("--reply_idle_s", type=float, default=2.0, help="with --input_file: the reply has ended after this much quiet")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Flag mistakes show before the conversation, not after it
    if args.output_file and not args.input_file:
        print("error: --output_file needs --input_file", file=sys.stderr)
        return 2
    if args.full_duplex and args.input_file:
        print("error: --full_duplex is for the microphone and speaker, not --input_file", file=sys.stderr)
        return 2
    problem = args.output_file and unwritable(args.output_file)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.input_file:
            return talk_with_files(args)
        talk_with_devices(args.host, args.send_port, args.recv_port, args.list_play_chunk_size,
                          full_duplex=args.full_duplex, latency=args.latency)
        return 0
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def talk_with_files(args) -> int:
    audio = load_wav(args.input_file)
    reply, question_end = talk_with_file(args.host, args.send_port, args.recv_port, audio,
                                         args.list_play_chunk_size, reply_idle_s=args.reply_idle_s,
                                         timeout_s=args.timeout_s)
    because = f": {reply.closed_because}" if reply.closed_because else ""
    if reply.first_at is None:
        closed = f" (it closed the connection{because})" if reply.cut_off else ""
        print(f"error: no reply from the server{closed}", file=sys.stderr)
        return 1
    seconds = len(reply.audio) / BYTES_PER_SAMPLE / SAMPLE_RATE
    print(f"reply: {seconds:.2f} s of audio, {describe_latency(reply.first_at - question_end)}", file=sys.stderr)
    if args.output_file:
        save_wav(args.output_file, bytes(reply.audio))
    if reply.cut_off:
        saved = f"; saved what came to {args.output_file}" if args.output_file else ""
        print(f"error: the reply was cut off: the server closed the connection before its end{because}{saved}",
              file=sys.stderr)
        return 1
    return 0


def describe_latency(delay_s: float) -> str:
    """How long after the question's end the reply began. A server may answer during a pause in a long
    question; that is not a negative latency."""
    if delay_s >= 0:
        return f"first audio {1000 * delay_s:.0f} ms after the question ended"
    return f"reply started while the question was still being sent ({-1000 * delay_s:.0f} ms before its end)"


def unwritable(path: str) -> str | None:
    """Why the reply could not be written to `path`, or None. Probed by opening it for appending (the
    content is untouched; a file made by the probe is removed)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"cannot write --output_file {path}: folder {folder} does not exist"
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        return f"cannot write --output_file {path}: {e.strerror}"
    if not existed:
        os.remove(path)
    return None


def save_wav(path: str, pcm: bytes) -> None:
    import soundfile as sf

    pcm = pcm[:len(pcm) - len(pcm) % BYTES_PER_SAMPLE]  # a server that died mid-reply may have sent half a sample
    try:
        # WAV whatever the file's extension: the format --output_file promises
        sf.write(path, np.frombuffer(pcm, dtype="<i2"), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    except (OSError, RuntimeError) as e:  # soundfile's errors are RuntimeErrors
        raise ClientError(f"cannot write {path}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
