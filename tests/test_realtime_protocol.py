"""Reading a Realtime client's session.update: GA and beta shapes, and one clear error for anything unsupported."""
import pytest

from connections.realtime.protocol import ProtocolError, SessionSettings, updated, user_text


def test_ga_session_update_sets_rates_turn_detection_and_instructions():
    settings = updated(SessionSettings(), {
        "type": "realtime", "instructions": "Be brief.",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000},
                            "turn_detection": {"type": "semantic_vad", "interrupt_response": False}},
                  "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
    }, tools_supported=False)
    assert (settings.input_rate, settings.output_rate, settings.voice) == (16000, 24000, "marin")
    assert settings.turn_detection and not settings.interrupt_response and settings.instructions == "Be brief."
    described = settings.describe("sess_1", "m")
    assert described["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 16000}
    assert described["audio"]["input"]["turn_detection"]["interrupt_response"] is False


def test_null_turn_detection_means_manual_commits_and_beta_names_are_read():
    settings = updated(SessionSettings(), {"turn_detection": None, "input_audio_format": "pcm16", "voice": "x"},
                       tools_supported=False)
    assert not settings.turn_detection and settings.input_rate == 24000 and settings.voice == "x"
    assert settings.describe("s", "m")["audio"]["input"]["turn_detection"] is None


@pytest.mark.parametrize("session, expected", [
    ({"type": "transcription"}, "only 'realtime'"),
    ({"audio": {"input": {"format": {"type": "audio/pcma"}}}}, "PCM16"),
    ({"audio": {"output": {"format": {"type": "audio/pcm", "rate": 44100}}}}, "44100"),
    ({"audio": {"input": {"turn_detection": {"type": "push_to_talk"}}}}, "push_to_talk"),
    ({"audio": {"input": {"turn_detection": {"create_response": False}}}}, "create_response"),
    ({"output_modalities": ["text"]}, "always speaks"),
    ({"instructions": 3}, "string"),
    ({"tools": [{"type": "function", "name": "get_weather"}]}, "not supported"),
    ({"tools": "all"}, "list"),
    ("fast", "object"),
])
def test_unsupported_or_malformed_settings_are_one_clear_error(session, expected):
    with pytest.raises(ProtocolError) as e:
        updated(SessionSettings(), session, tools_supported=False)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_a_bad_update_changes_nothing():
    settings = SessionSettings()
    with pytest.raises(ProtocolError):
        updated(settings, {"instructions": "new", "audio": {"input": {"format": {"rate": 8000}}}}, tools_supported=False)
    assert settings.instructions is None


def test_user_messages():
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": " Hi "},
                                                           {"type": "input_text", "text": "there"}]}
    assert user_text(item) == "Hi there"
    for bad, expected in [({"type": "message", "role": "assistant", "content": []}, "assistant"),
                          ({"type": "message", "role": "user", "content": []}, "non-empty"),
                          ({"type": "message", "role": "user", "content": [{"type": "input_audio"}]}, "input_audio"),
                          ({"type": "function_call_output", "output": "{}"}, "function tools")]:
        with pytest.raises(ProtocolError) as e:
            user_text(bad)
        assert expected in str(e.value)
