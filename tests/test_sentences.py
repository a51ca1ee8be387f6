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
    assert sentence_tokenizer().span_tokenize("One. Two.")
