"""The subset of the OpenAI Realtime protocol (GA event names) this server speaks: ids, the session object, and
reading a client's session.update into settings, with one clear message for anything wrong or unsupported."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

INPUT_RATES = (16000, 24000)  # PCM16 rates accepted; 24 kHz is the protocol's default
DEFAULT_RATE = 24000
AUDIO_FORMAT = "audio/pcm"
TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")  # semantic_vad: our end-of-turn model decides either way


class ProtocolError(ValueError):
    """A client event we cannot act on: becomes an `error` event; the session stays open."""

    def __init__(self, message: str, code: str = "invalid_request_error", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


@dataclass(frozen=True)
class SessionSettings:
    instructions: str | None = None
    input_rate: int = DEFAULT_RATE
    output_rate: int = DEFAULT_RATE
    turn_detection: bool = True  # server VAD; False: the client commits the audio buffer itself
    interrupt_response: bool = True  # speech during a reply cuts it short (barge-in)
    voice: str = "default"
    tools: tuple = field(default_factory=tuple)

    def describe(self, session_id: str, model: str) -> dict:
        """The session object of session.created / session.updated."""
        detection = None
        if self.turn_detection:
            detection = {"type": "server_vad", "create_response": True, "interrupt_response": self.interrupt_response}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": self.instructions or "",
            "audio": {
                "input": {
                    "format": {"type": AUDIO_FORMAT, "rate": self.input_rate},
                    "turn_detection": detection,
                    "transcription": {"model": "server"},
                },
                "output": {"format": {"type": AUDIO_FORMAT, "rate": self.output_rate}, "voice": self.voice},
            },
            "tools": list(self.tools),
            "tool_choice": "auto",
        }


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be an object, not {type(value).__name__}", param=where)
    return value


def _rate(fmt: Any, where: str) -> int:
    """An audio format object ({"type": "audio/pcm", "rate": 24000}) or the beta string "pcm16"."""
    if fmt == "pcm16":
        return DEFAULT_RATE
    fmt = _obj(fmt, where)
    kind = fmt.get("type", AUDIO_FORMAT)
    if kind != AUDIO_FORMAT:
        raise ProtocolError(
            f"{where}.type '{kind}' is not supported: only PCM16 mono ('{AUDIO_FORMAT}')", param=f"{where}.type"
        )
    rate = fmt.get("rate", DEFAULT_RATE)
    if rate not in INPUT_RATES:
        raise ProtocolError(f"{where}.rate {rate!r} is not supported: use 24000 or 16000", param=f"{where}.rate")
    return rate


def _turn_detection(value: Any, settings: SessionSettings, where: str) -> SessionSettings:
    if value is None:
        return replace(settings, turn_detection=False)
    value = _obj(value, where)
    kind = value.get("type", "server_vad")
    if kind not in TURN_DETECTION_TYPES:
        raise ProtocolError(
            f"{where}.type '{kind}' is unknown: use server_vad, semantic_vad or null", param=f"{where}.type"
        )
    if value.get("create_response", True) is not True:
        raise ProtocolError(
            f"{where}.create_response false is not supported: every turn the server VAD ends is "
            "answered (use turn_detection null to commit turns yourself)",
            param=f"{where}.create_response",
        )
    interrupt = value.get("interrupt_response", True)
    if not isinstance(interrupt, bool):
        raise ProtocolError(f"{where}.interrupt_response must be true or false", param=f"{where}.interrupt_response")
    return replace(settings, turn_detection=True, interrupt_response=interrupt)


def updated(settings: SessionSettings, session: Any, tools_supported: bool) -> SessionSettings:
    """`settings` with a session.update's `session` applied (GA shape; the beta's top-level names are read too).
    Raises ProtocolError and changes nothing when any part is wrong."""
    session = _obj(session, "session")
    kind = session.get("type", "realtime")
    if kind != "realtime":
        raise ProtocolError(f"session.type '{kind}' is not supported: only 'realtime' sessions", param="session.type")
    if "instructions" in session:
        if not isinstance(session["instructions"], str):
            raise ProtocolError("session.instructions must be a string", param="session.instructions")
        settings = replace(settings, instructions=session["instructions"])
    modalities = session.get("output_modalities", session.get("modalities"))
    if modalities is not None and "audio" not in modalities:
        raise ProtocolError(
            "output_modalities without 'audio' is not supported: this server always speaks",
            param="session.output_modalities",
        )
    audio = _obj(session.get("audio", {}), "session.audio")
    audio_in = _obj(audio.get("input", {}), "session.audio.input")
    audio_out = _obj(audio.get("output", {}), "session.audio.output")
    if "format" in audio_in or "input_audio_format" in session:
        settings = replace(
            settings,
            input_rate=_rate(audio_in.get("format", session.get("input_audio_format")), "session.audio.input.format"),
        )
    if "format" in audio_out or "output_audio_format" in session:
        settings = replace(
            settings,
            output_rate=_rate(
                audio_out.get("format", session.get("output_audio_format")), "session.audio.output.format"
            ),
        )
    if "turn_detection" in audio_in:
        settings = _turn_detection(audio_in["turn_detection"], settings, "session.audio.input.turn_detection")
    elif "turn_detection" in session:
        settings = _turn_detection(session["turn_detection"], settings, "session.turn_detection")
    voice = audio_out.get("voice", session.get("voice"))
    if voice is not None:
        if not isinstance(voice, str):
            raise ProtocolError("session.audio.output.voice must be a string", param="session.audio.output.voice")
        settings = replace(settings, voice=voice)
    tools = session.get("tools")
    if tools:
        if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("type") == "function" for t in tools):
            raise ProtocolError(
                'session.tools must be a list of {"type": "function", ...} objects', param="session.tools"
            )
        if not tools_supported:
            raise ProtocolError(
                "function tools are not supported by this server's language model backend: use "
                "--llm open_api (a server with tool calling) to use them",
                code="unsupported_feature",
                param="session.tools",
            )
        settings = replace(settings, tools=tuple(tools))
    elif tools == []:
        settings = replace(settings, tools=())
    return settings


def user_text(item: Any) -> str:
    """The text of a conversation.item.create's user message item."""
    item = _obj(item, "item")
    kind = item.get("type", "message")
    if kind == "function_call_output":
        raise ProtocolError(
            "function_call_output items need function tools, which this server's language model "
            "backend does not support",
            code="unsupported_feature",
            param="item.type",
        )
    if kind != "message":
        raise ProtocolError(f"item.type '{kind}' is not supported: send user messages", param="item.type")
    if item.get("role") != "user":
        raise ProtocolError(
            f"item.role '{item.get('role')}' is not supported: only user messages can be added "
            "(set instructions with session.update)",
            param="item.role",
        )
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise ProtocolError("item.content must be a non-empty list", param="item.content")
    texts = []
    for part in content:
        part = _obj(part, "item.content[]")
        if part.get("type") not in ("input_text", "text") or not isinstance(part.get("text"), str):
            raise ProtocolError(
                f"item content of type '{part.get('type')}' is not supported: send input_text "
                "(audio goes through input_audio_buffer.append)",
                param="item.content",
            )
        texts.append(part["text"])
    text = " ".join(t.strip() for t in texts).strip()
    if not text:
        raise ProtocolError("the user message is empty", param="item.content")
    return text


def user_item(item_id: str, transcript: str | None = None, text: str | None = None) -> dict:
    content: list[dict]
    if text is not None:
        content = [{"type": "input_text", "text": text}]
    else:
        content = [{"type": "input_audio", "transcript": transcript}]
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": content,
    }


def assistant_item(item_id: str, transcript: str | None, status: str) -> dict:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_audio", "transcript": transcript}],
    }


def response_object(response_id: str, status: str, output: list, reason: str | None = None) -> dict:
    details = {"type": status, "reason": reason} if reason else None
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": details,
        "output": output,
        "output_modalities": ["audio"],
    }
