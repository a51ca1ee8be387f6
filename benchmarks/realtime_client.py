"""A Realtime client for the tests and benchmarks: the official `openai` SDK's Realtime connection, with speech
streamed at the pace it is spoken and every server event kept with the time it arrived."""
from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, Callable

import numpy as np

RATE = 24000  # the protocol's default PCM16 rate
CHUNK_S = 0.04


def to_pcm24(samples16k: np.ndarray) -> bytes:
    import soxr

    audio = soxr.resample(np.asarray(samples16k, dtype=np.float32) / 32768.0, 16000, RATE)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def last_voiced_s(samples16k: np.ndarray, threshold: int = 500) -> float:
    """Where the last voiced sample is, in seconds from the start: latency counts from there."""
    loud = np.flatnonzero(np.abs(samples16k.astype(np.int32)) > threshold)
    return (loud[-1] + 1) / 16000 if len(loud) else 0.0


class RealtimeTalker:
    """`async with RealtimeTalker(port) as talk:` then `await talk.say(samples)`, `await talk.wait_for(...)`."""

    def __init__(self, port: int, api_key: str = "unused", host: str = "127.0.0.1") -> None:
        self.url = f"ws://{host}:{port}/v1"
        self.api_key = api_key
        self.events: list[tuple[float, Any]] = []
        self._changed = asyncio.Event()
        self.voiced_end: list[float] = []  # time.monotonic() at which each question's last voiced sample was sent

    async def __aenter__(self) -> "RealtimeTalker":
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(api_key=self.api_key, websocket_base_url=self.url)
        self._manager = self.client.realtime.connect(model="s2s")
        self.conn = await self._manager.__aenter__()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        await self._manager.__aexit__(*exc)

    async def _read(self) -> None:
        async for event in self.conn:
            self.events.append((time.monotonic(), event))
            self._changed.set()

    async def send(self, event: dict) -> None:
        await self.conn.send(event)  # type: ignore[arg-type]

    async def say(self, samples16k: np.ndarray, silence_after_s: float = 1.5, chunk_s: float = CHUNK_S) -> float:
        """Stream the speech then `silence_after_s` of silence, at the pace they would be spoken; returns when the
        last voiced sample was sent (time.monotonic())."""
        pcm = to_pcm24(samples16k) + bytes(int(silence_after_s * RATE) * 2)
        voiced_at = last_voiced_s(samples16k)
        step = int(chunk_s * RATE) * 2
        started = time.monotonic()
        voiced_end = None
        for offset in range(0, len(pcm), step):
            due = started + offset / 2 / RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self.conn.input_audio_buffer.append(audio=base64.b64encode(pcm[offset:offset + step]).decode())
            if voiced_end is None and (offset + step) / 2 / RATE >= voiced_at:
                voiced_end = started + voiced_at
        assert voiced_end is not None
        self.voiced_end.append(voiced_end)
        return voiced_end

    def of_type(self, kind: str, since: float = 0.0) -> list:
        return [e for t, e in self.events if e.type == kind and t >= since]

    async def wait_for(self, kind: str, timeout: float = 60.0, since: float = 0.0,
                       where: Callable[[Any], bool] = lambda e: True) -> tuple[float, Any]:
        """The first event of `kind` (received at or after `since`) that `where` accepts, and when it came."""
        deadline = time.monotonic() + timeout
        while True:
            for t, e in self.events:
                if t >= since and e.type == kind and where(e):
                    return t, e
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = ", ".join(e.type for _, e in self.events[-15:])
                raise TimeoutError(f"no {kind} within {timeout:.0f} s; the last events: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def reply_audio(self, response_id: str) -> np.ndarray:
        """The reply's audio as int16 at 24 kHz."""
        chunks = [base64.b64decode(e.delta) for e in self.of_type("response.output_audio.delta")
                  if e.response_id == response_id]
        return np.frombuffer(b"".join(chunks), "<i2")
