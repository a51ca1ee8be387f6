import pytest

from utils.sentences import SentenceSplitter, sentence_tokenizer


def feed(text, piece_size=3):
    splitter = SentenceSplitter()
    out = []
    for i in range(0, len(text), piece_size):
        out += splitter.push(text[i:i + piece_size])
    return out, splitter.flush()


def test_sentences_are_released_as_soon_as_the_next_one_starts():
    splitter = SentenceSplitter()
    assert splitter.push("Hello there.") == []
    assert splitter.push(" How") == ["Hello there."]
    assert splitter.push(" are you?") == []
    assert splitter.flush() == "How are you?"


def test_streamed_pieces_give_the_same_sentences_as_the_whole_text():
    text = "Paris is the capital of France. It has about two million people! Do you want to visit? Sure"
    sentences, rest = feed(text)
    assert sentences == ["Paris is the capital of France.", "It has about two million people!", "Do you want to visit?"]
    assert rest == "Sure"


def test_abbreviations_and_decimals_do_not_end_a_sentence():
    sentences, rest = feed("I met Dr. Smith at 3.5 p.m. today. It was fine.")
    assert sentences == ["I met Dr. Smith at 3.5 p.m. today."]
    assert rest == "It was fine."


def test_tokenizer_loads_offline():
    assert list(sentence_tokenizer().span_tokenize("One. Two.")) == [(0, 4), (5, 9)]


@pytest.fixture
def without_punkt_data(monkeypatch):
    """The path every offline machine takes: nltk's trained punkt data is absent (it downloads at run time)."""
    from nltk.tokenize import punkt

    def missing(language):
        raise LookupError(f"Resource punkt_tab/{language} not found")

    monkeypatch.setattr(punkt, "PunktTokenizer", missing)
    sentence_tokenizer.cache_clear()
    yield
    sentence_tokenizer.cache_clear()


def test_without_punkt_data_the_built_in_abbreviations_split_sentences(without_punkt_data):
    tokenizer = sentence_tokenizer()
    assert tokenizer.__class__.__name__ == "PunktSentenceTokenizer"
    text = "I met Dr. Smith and Mr. Jones at 3 p.m. in the U.S. today. It was fine. Was it? Yes!"
    assert tokenizer.tokenize(text) == [
        "I met Dr. Smith and Mr. Jones at 3 p.m. in the U.S. today.", "It was fine.", "Was it?", "Yes!"]
    sentences, rest = feed("We met Prof. Lee, e.g. at noon. Then we left.")
    assert sentences == ["We met Prof. Lee, e.g. at noon."] and rest == "Then we left."


def test_the_first_phrase_of_a_reply_goes_out_at_a_comma():
    splitter = SentenceSplitter(first_phrase_words=4)
    out = []
    for piece in "I'm sorry for any confusion, but as a voice assistant, I can help. Sure, fine.".split(" "):
        out += splitter.push(piece + " ")
    assert out == ["I'm sorry for any confusion,", "but as a voice assistant, I can help."]
    assert splitter.flush() == "Sure, fine."


def test_short_clauses_and_numbers_do_not_make_a_first_phrase():
    splitter = SentenceSplitter(first_phrase_words=4)
    assert splitter.push("Yes, it is 2,150,000 miles") == []
    assert splitter.push(" away. Then") == ["Yes, it is 2,150,000 miles away."]


def test_a_first_phrase_without_any_punctuation_goes_out_after_enough_words():
    """A run-on start must not hold the voice until the whole reply is written."""
    from utils.sentences import FIRST_PHRASE_MAX_WORDS

    splitter = SentenceSplitter(first_phrase_words=4)
    words = [chr(ord("a") + i) for i in range(FIRST_PHRASE_MAX_WORDS + 3)]  # short words: the word count decides
    released = []
    for i, word in enumerate(words):
        released += splitter.push(word if i == 0 else " " + word)
        if released:
            break
    assert released == [" ".join(words[:FIRST_PHRASE_MAX_WORDS])]  # whole words: the last may still grow
    assert splitter.push(" more. Next") == [f"{words[FIRST_PHRASE_MAX_WORDS]} more."]


def test_a_first_sentence_without_a_comma_goes_out_before_a_phrase_opener():
    splitter = SentenceSplitter(first_phrase_words=1)
    out = []
    for piece in ["The", " sky", " is", " blue", " because"]:
        out += splitter.push(piece)
    assert out == []  # " because" may still grow ("becauses" is not a word, but " by" may be " bystander")
    out += splitter.push(" of")
    assert out == ["The sky is blue"]
    out += splitter.push(" the air. It")
    assert out == ["The sky is blue", "because of the air."]


def test_an_opener_too_early_in_the_sentence_does_not_break_it():
    splitter = SentenceSplitter(first_phrase_words=1)
    assert splitter.push("Go to the shop and") == []  # "to" after one word: too short a phrase to say alone
    assert splitter.push(" buy") == ["Go to the shop"]  # "and" after four


def test_a_first_sentence_without_a_comma_goes_out_before_a_preposition_after_three_words():
    # most short answers have no clause mark before their full stop: the voice starts on their subject
    assert first_phrase_of(["The", " tallest", " mountain", " in", " the", " world"]) == (["The tallest mountain"], 5)
    assert first_phrase_of(["The", " capital", " of", " France", " is", " Paris", ".", " It"]) == (
        ["The capital of France"], 6)  # "of" after two words: too short a phrase to say alone; "is" after four


def test_a_first_sentence_goes_out_where_its_subject_ends():
    # the verb after a subject of three words or more starts the next piece, once a word follows it
    assert first_phrase_of(["The", " Great", " Barrier", " Reef", " is", " located", " off"]) == (
        ["The Great Barrier Reef"], 6)
    assert first_phrase_of(["Yawning", " when", " we", " are", " tired", " is", " a", " common"]) == (
        ["Yawning when we are tired"], 7)  # not after the pronoun: "when we | are tired" is one breath
    assert first_phrase_of(["Cats", " purr", " when", " they", " are", " happy", ".", " They"]) == (
        ["Cats purr when they are happy."], 7)
    assert first_phrase_of(["A", " spider", " has", " eight", " legs", ".", " It"]) == (
        ["A spider has eight legs."], 6)  # a subject of two words: too short a phrase to say alone


def test_a_first_phrase_of_many_pieces_goes_out_at_its_last_whole_word():
    # numbers take a token a digit: "2,150,000" keeps the voice waiting as long as several words
    splitter = SentenceSplitter(first_phrase_words=1)
    pieces = ["The", " moon", " is", " approximately", " ", "2", ",", "1", "5", "0", ",", "0", "0", "0", " miles"]
    out = []
    for piece in pieces:
        out += splitter.push(piece)
    assert out == ["The moon is approximately 2,150,000"]  # at the 15th piece ("miles" may still grow)
    assert splitter.push(" away from the Earth. It") == ["miles away from the Earth."]


def test_a_first_phrase_cut_for_its_length_leaves_a_phrase_opener_to_the_next_piece():
    splitter = SentenceSplitter(first_phrase_words=1)
    out = []
    for piece in ["A", " b", " c", " d", " e", " f", " g", " h", " i", " j", " k", " l", " m", " to", " o"]:
        out += splitter.push(piece)
    assert out == ["A b c d e f g h i j k l m"]  # past 14 words; " to" opens the next piece
    assert splitter.push(" pig. Then") == ["to o pig."]


def first_phrase_of(pieces: list[str], first_phrase_words: int = 1) -> tuple[list[str], int]:
    """The first piece released, and how many model pieces it took."""
    splitter = SentenceSplitter(first_phrase_words=first_phrase_words)
    for n, piece in enumerate(pieces, 1):
        out = splitter.push(piece)
        if out:
            return out, n
    return [splitter.flush()], len(pieces)


def test_a_first_sentence_goes_out_with_its_full_stop_not_a_piece_later():
    assert first_phrase_of(["The", " capital", " is", " Paris", ".", " It"]) == (["The capital is Paris."], 5)
    assert first_phrase_of(["Really", "?", " Yes"]) == (["Really?"], 2)
    assert first_phrase_of(["Sure", ",", " I", " can"]) == (["Sure,"], 2)


@pytest.mark.parametrize("pieces, whole", [
    (["It", " is", " 7", ".", "5", " days", ".", " So"], "It is 7.5 days."),  # a number: a decimal may follow
    (["I", " met", " Dr", ".", " Smith", ".", " He"], "I met Dr. Smith."),  # an abbreviation
    (["I", " met", " J", ".", " Smith", ".", " He"], "I met J. Smith."),  # an initial
    (["Well", "...", " maybe", ".", " So"], "Well... maybe."),  # an ellipsis
])
def test_a_full_stop_that_may_not_end_the_sentence_waits_for_more(pieces, whole):
    assert first_phrase_of(pieces)[0] == [whole]


def test_a_comma_after_a_digit_waits_for_more():
    assert first_phrase_of(["Yes", " it", " is", " 2", ",", "150", " miles", ".", " So"], 4)[0] == ["Yes it is 2,150 miles."]
