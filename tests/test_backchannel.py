"""What said over a reply lets it play on (STT/backchannel.py)."""
import pytest

from STT.backchannel import is_backchannel


@pytest.mark.parametrize("text", ["Mm-hmm.", "Yeah.", "Okay.", "Right, right.", "Uh-huh", "Oh, I see.", ""])
def test_backchannel_words_let_the_reply_play_on(text):
    assert is_backchannel(text)
    assert is_backchannel(text, speech_s=0.4)


@pytest.mark.parametrize("text", ["I'm them.", "And mam them", "Mama", "Nice one."])
def test_a_short_murmur_is_a_backchannel_whatever_it_was_heard_as(text):
    # Whisper hears a murmured "mm-hmm" as words; short and neither asking nor stopping, it does not take the turn
    assert is_backchannel(text, speech_s=0.9)
    assert not is_backchannel("I'm them.")  # without its duration it is words like any others


@pytest.mark.parametrize("text", ["Stop.", "Wait!", "No.", "Hold on.", "What?", "Sorry?", "Paris?", "Actually,",
                                  "Tell me more.", "I don't understand.", "Not that one."])
def test_a_short_word_that_stops_or_asks_cuts_the_reply(text):
    assert not is_backchannel(text, speech_s=0.4)


def test_a_longer_utterance_cuts_the_reply():
    assert not is_backchannel("Tell me about the weather.", speech_s=1.2)
    assert not is_backchannel("Good one.", speech_s=1.3)  # two words, but too long for a murmur
    assert not is_backchannel("Go to Paris now", speech_s=0.9)  # four words
    assert not is_backchannel("What time is it in Tokyo?")
