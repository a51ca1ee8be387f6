"""Playback has priority: the speaker's buffer, and the gate that keeps the microphone closed while
the assistant's own voice is in the room (no echo cancellation: half-duplex)."""
from __future__ import annotations

import queue

from utils.audio import BYTES_PER_SAMPLE, SAMPLE_RATE


class SpeakerBuffer:
    """Reply audio waiting for the output callback, and when the last of it leaves the speaker.

    `push` is called by the streamer thread; `fill` is the body of the output callback: it only copies
    bytes and notes a time stamp. Times are time.monotonic() seconds.
    """

    def __init__(self, max_blocks: int, reference=None) -> None:
        self._blocks: queue.Queue[bytes] = queue.Queue(max_blocks)  # 0: no bound
        self._pending = bytearray()  # owned by the callback: bytes taken from the queue, not yet played
        self.sounding_until = float("-inf")  # when the last sample handed to the device will have been heard
        self.reference = reference  # an EchoReference (connections/full_duplex.py): told what is played, and when
        self.held = False  # barge-in: the user may be cutting in; silence until released, nothing lost
        self._flush = False  # barge-in: the reply was cut; the callback drops what is queued
        self.bytes_in = self.bytes_out = 0  # pushed / handed to the device: what is still queued

    def has_room(self) -> bool:
        return not self._blocks.full()

    def push(self, pcm: bytes) -> None:
        self._blocks.put_nowait(pcm)  # bounded: callers check has_room(); only this thread pushes
        self.bytes_in += len(pcm)

    def hold(self) -> None:
        self.held = True

    def release(self) -> None:
        self.held = False

    def flush(self) -> None:
        """Drop the queued reply (the next callback does it: it owns the pending bytes) and play on."""
        self._flush = True
        self.held = False

    @property
    def queued_s(self) -> float:
        return max(0, self.bytes_in - self.bytes_out) / BYTES_PER_SAMPLE / SAMPLE_RATE

    @property
    def busy(self) -> bool:
        """Audio is queued that the device has not taken yet."""
        return not self._blocks.empty() or bool(self._pending)

    def fill(self, outdata, now: float, output_delay_s: float) -> int:
        """Copy queued audio into `outdata` (silence where there is none); returns the bytes of audio written.
        `output_delay_s`: from this callback to the moment its first sample is heard (PortAudio's DAC time)."""
        need = len(outdata)
        if self._flush:
            self._flush = False
            self._pending.clear()
            while True:
                try:
                    self._blocks.get_nowait()
                except queue.Empty:
                    break
            self.bytes_out = self.bytes_in
        if self.held:
            outdata[:need] = bytes(need)
            if self.reference is not None:
                self.reference.played(b"", need // BYTES_PER_SAMPLE, now, output_delay_s)
            return 0
        while len(self._pending) < need:
            try:
                self._pending += self._blocks.get_nowait()
            except queue.Empty:
                break
        n = min(need, len(self._pending))
        if n:
            outdata[:n] = self._pending[:n]
            del self._pending[:n]
            self.bytes_out += n
            self.sounding_until = now + output_delay_s + n / BYTES_PER_SAMPLE / SAMPLE_RATE
        if n < need:
            outdata[n:need] = bytes(need - n)
        if self.reference is not None:  # every callback, silence included: the reference counts samples
            self.reference.played(bytes(outdata[:n]), need // BYTES_PER_SAMPLE, now, output_delay_s)
        return n


def dac_delay(time_info, fallback_s: float) -> float:
    """From an output callback to the moment its first sample is heard: PortAudio's DAC time, or `fallback_s`
    (the stream's latency) where the host API reports none."""
    delay = time_info.outputBufferDacTime - time_info.currentTime
    return delay if delay > 0 else fallback_s


class HalfDuplexGate:
    """Decides, per microphone block, whether the assistant may hear it.

    Closed while the pipeline is not listening (`listening` False: a reply is being prepared), while reply
    audio waits for the speaker, and until `tail_s` after the reply's last sample was heard in the room,
    judged by the block's capture time. `margin_s` covers the input side's delay (about one block).
    """

    def __init__(self, speaker: SpeakerBuffer, tail_s: float, margin_s: float) -> None:
        self.speaker = speaker
        self.tail_s = tail_s
        self.margin_s = margin_s

    def mic_open(self, captured_at: float, listening: bool) -> bool:
        if not listening or self.speaker.busy:
            return False
        return captured_at >= self.speaker.sounding_until + self.margin_s + self.tail_s
