"""The pure parts of the conversation benchmarks: turns by bucket, slope, server records per turn, the question
file, keyword and Spanish checks, the order of the late conversation and its scores; the client side with a
scripted converse()."""
import numpy as np
import pytest

from benchmarks.answers import SPANISH, Answer, conversation_order, score
from benchmarks.measures import RATE
from benchmarks.questions import Question, answered_right, parse_questions, sounds_spanish, spanish_word_count
from benchmarks.report import (
    TurnResult,
    bucket_of,
    format_marks_table,
    format_turn_table,
    format_turns,
    marks_by_bucket,
    match_marks,
    slope_per_turn,
    summarize_turns,
)


def turn(n, heard_s, mode="conversation", end=None, question=None):
    return TurnResult(question or f"q{n}", 0, heard_s, heard_s, f"heard {n}", question_end_clock=end, turn=n, mode=mode)


# --- by turn ---------------------------------------------------------------------------------------------


def test_turns_fall_in_buckets_1_2_to_5_and_6_on():
    assert [bucket_of(n) for n in (1, 2, 5, 6, 30)] == ["1", "2-5", "2-5", "6+", "6+"]
    with pytest.raises(ValueError):
        bucket_of(0)


def test_slope_is_the_least_squares_fit():
    assert slope_per_turn([(1, 3.0), (2, 5.0), (3, 7.0)]) == pytest.approx(2.0)
    points = [(1, 0.5), (2, 0.4), (3, 0.9), (4, 0.6), (7, 1.1)]
    expected = np.polyfit([x for x, _ in points], [y for _, y in points], 1)[0]
    assert slope_per_turn(points) == pytest.approx(expected)
    assert slope_per_turn([(3, 1.0), (3, 2.0)]) is None  # one turn only: no line to fit
    assert slope_per_turn([]) is None


def test_turn_summary_by_bucket_leaves_out_early_and_silent_replies():
    # 0.1 s more per turn from 0.4 s at turn 1; turn 4 never answered, turn 5 began before its question ended
    turns = [turn(n, 0.3 + 0.1 * n) for n in (1, 2, 3, 6, 7, 8)] + [turn(4, None), turn(5, -0.2)]
    s = summarize_turns(turns)
    assert s["replies"] == "6/8" and s["early"] == 1
    assert s["median_ms"] == pytest.approx(750.0)  # 0.4 0.5 0.6 0.9 1.0 1.1
    assert s["p90_ms"] == pytest.approx(1050.0)
    assert s["buckets"]["1"] == {"turns": 1, "median_ms": 400.0, "p90_ms": 400.0}
    assert s["buckets"]["2-5"] == {"turns": 2, "median_ms": 550.0, "p90_ms": 590.0}
    assert s["buckets"]["6+"]["turns"] == 3 and s["buckets"]["6+"]["median_ms"] == pytest.approx(1000.0)
    assert s["slope_ms_per_turn"] == pytest.approx(100.0)
    empty = summarize_turns([turn(1, None)])
    assert (empty["replies"], empty["median_ms"], empty["slope_ms_per_turn"]) == ("0/1", None, None)
    assert empty["buckets"]["6+"] == {"turns": 0, "median_ms": None, "p90_ms": None}


def test_server_records_go_to_the_turn_whose_question_ended_nearest():
    turns = [turn(1, 0.5, end=100.0), turn(2, 0.5, end=110.0), turn(3, 0.5, end=120.0), turn(4, 0.5, end=None)]
    records = [{"speech_end_clock": 110.3, "transcript_ms": 2.0}, {"speech_end_clock": 100.05, "transcript_ms": 1.0},
               {"speech_end_clock": 109.0, "transcript_ms": 9.0},  # half a question, long before its end
               {"speech_end_clock": 125.0, "transcript_ms": 3.0}]  # nobody's: outside every window
    matched = match_marks(turns, records)
    assert [m and m["transcript_ms"] for m in matched] == [1.0, 2.0, None, None]


def test_server_marks_by_bucket_and_their_slope():
    turns = [turn(n, 0.5, end=10.0 * n) for n in (1, 2, 3, 6, 8)]
    records = [{"speech_end_clock": 10.0 * n + 0.05, "transcript_ms": 200.0, "first_token_ms": 300.0 + 10 * n}
               for n in (1, 2, 3, 6, 8)]
    marks = marks_by_bucket(turns, records)
    assert marks["1"] == {"turns": 1, "transcript": 200.0, "first_token": 310.0, "first_sentence": None,
                          "first_audio_sent": None}
    assert marks["2-5"]["first_token"] == 325.0 and marks["6+"]["first_token"] == 370.0
    assert marks["slope_ms_per_turn"]["first_token"] == pytest.approx(10.0)
    assert marks["slope_ms_per_turn"]["transcript"] == pytest.approx(0.0)
    assert marks["slope_ms_per_turn"]["first_audio_sent"] is None
    table = format_marks_table({"conversation": marks})
    assert "| conversation | 6+ | 2 | 200 ms | 370 ms | n/a | n/a |" in table
    assert "| conversation | slope | | +0.0 ms/turn | +10.0 ms/turn | n/a | n/a |" in table


def test_turn_table_has_a_row_per_mode_with_buckets_and_slope():
    conversation = summarize_turns([turn(1, 0.4), turn(2, 0.5), turn(6, 0.9), turn(7, -0.1)])
    fresh = summarize_turns([turn(n, 0.4, mode="fresh") for n in (1, 2, 6, 7)])
    lines = format_turn_table({"conversation": conversation, "fresh": fresh}).splitlines()
    assert lines[0] == ("| mode | replies with voice | median | p90 | turn 1: median / p90 | turns 2-5: median / p90 | "
                        "turns 6+: median / p90 | slope (least squares) |")
    assert lines[2].startswith("| conversation: every question on one connection | 3/4 (1 began before the question ended) | "
                               "500 ms | 820 ms | 400 / 400 ms | 500 / 500 ms | 900 / 900 ms | +")
    assert lines[3].endswith("| 400 / 400 ms | 400 / 400 ms | 400 / 400 ms | +0.0 ms/turn |")
    short = format_turn_table({"fresh": summarize_turns([turn(1, 0.4, "fresh")])}).splitlines()[2]
    assert short.endswith("| 400 / 400 ms | n/a | n/a | n/a |")  # no later turns, no slope


def test_per_turn_lines_put_the_modes_side_by_side():
    turns = [turn(1, 0.4, question="Hi"), turn(2, 0.6, question="Why?"), turn(1, 0.3, "fresh", question="Hi"),
             TurnResult("Why?", 1, 0.8, 0.8, "why", turn=2, mode="conversation")]
    lines = format_turns(turns).splitlines()
    assert lines[0] == "| turn | question | conversation ms | fresh ms | server heard |"
    assert lines[2] == "| 1 | Hi | 400 | 300 | heard 1 |"
    assert lines[3] == "| 2 | Why? | 700 | n/a | why |"  # median of two runs; heard in the last run


# --- questions, keywords, Spanish ------------------------------------------------------------------------


def test_question_lines_with_and_without_keywords():
    questions = parse_questions(["# a comment", "", "  How do I boil an egg?  ",
                                 "How many days are in a week? | seven, 7", "What do bees make? |honey,"])
    assert questions == [Question("How do I boil an egg?"), Question("How many days are in a week?", ("seven", "7")),
                         Question("What do bees make?", ("honey",))]
    assert [q.is_fact for q in questions] == [False, True, True]
    with pytest.raises(ValueError):
        parse_questions([" | Paris"])


def test_the_shipped_list_has_enough_questions_and_facts():
    from benchmarks.questions import load_questions

    questions = load_questions()
    assert len(questions) >= 25
    assert sum(q.is_fact for q in questions) >= 12
    assert len({q.text for q in questions}) == len(questions)


def test_a_keyword_counts_as_whole_words_in_any_case():
    assert answered_right("The capital of France is PARIS.", ["Paris"])
    assert answered_right("A week is 7 days.", ["seven", "7"])
    assert not answered_right("It has 17 days.", ["7"])
    assert not answered_right("That is a nice price.", ["ice"])
    assert answered_right("Plants take in carbon dioxide.", ["carbon dioxide", "CO2"])
    assert answered_right("A day is twenty-four hours.", ["24", "twenty-four"])
    assert not answered_right("No idea.", [])


def test_spanish_words_tell_a_spanish_reply_from_an_english_one():
    assert spanish_word_count("El capital de España es Madrid.") == 3  # el, de, es
    assert sounds_spanish("Para esta palabra, no puedo.")
    assert not sounds_spanish("The capital of Spain is Madrid.")
    assert not sounds_spanish("El Niño warms the Pacific.")  # one Spanish word is not a Spanish reply
    assert not sounds_spanish("My son lives in Los Angeles.")  # "son" is English: not on the list


# --- the late conversation ---------------------------------------------------------------------------------


def test_late_conversation_opens_with_small_talk_and_spanish_then_the_facts():
    small = [Question(f"small {i}") for i in range(5)]
    facts = [Question(f"fact {i}", ("x",)) for i in range(3)]
    questions = [facts[0], small[0], small[1], facts[1], small[2], small[3], small[4], facts[2]]
    order = conversation_order(questions)
    assert [q.text for q, _ in order] == ["small 0", SPANISH.text, "small 1", "small 2", "small 3",
                                          "fact 0", "fact 1", "small 4", "fact 2"]
    assert [lang for _, lang in order] == ["en", "es"] + ["en"] * 7
    assert all(turn >= 6 for turn, (q, lang) in enumerate(order, 1) if q.is_fact and lang == "en")
    plain = conversation_order(questions, spanish=None)
    assert [q.text for q, _ in plain][:5] == ["small 0", "small 1", "small 2", "small 3", "small 4"]
    assert len(plain) == len(questions)


def answer(question, turn, right, reply="fine", language="en"):
    return Answer(question, ("x",) if right is not None else (), turn, language, reply, right, spanish_word_count(reply))


def test_scores_compare_the_same_facts_fresh_and_late():
    fresh = [answer("a", 1, True), answer("b", 1, True), answer("c", 1, True), answer("d", 1, False)]
    late = [answer("hi", 1, None), answer(SPANISH.text, 2, False, "El capital es Toledo.", "es"),
            answer("d", 3, True),  # too early to count as late
            answer("a", 6, True), answer("b", 7, False, "El cielo es azul."), answer("c", 8, False), answer("bye", 9, None)]
    s = score(fresh, late)
    assert s["late"] == {"count": 1, "of": 3, "share": 0.3333}
    assert s["fresh"] == {"count": 3, "of": 3, "share": 1.0}  # "d" was asked too early: left out of both
    assert s["difference_points"] == pytest.approx(-66.7)
    assert s["late_leak"] == {"count": 1, "of": 5, "share": 0.2}  # English replies after turn 2
    assert s["fresh_leak"]["count"] == 0
    assert s["spanish_right"] is False
    english_only = score(fresh, [a for a in late if a.language == "en"])
    assert english_only["late_leak"] == {"count": 1, "of": 6, "share": 0.1667}  # no Spanish turn: every reply
    assert english_only["spanish_right"] is None


# --- the clients, with a scripted converse() -------------------------------------------------------------


class ScriptedReply:
    """What converse() returns per question: a reply whose first voiced sample arrives at `voice_at`."""

    def __init__(self, voice_at):
        pcm = np.zeros(800, "<i2")
        if voice_at is not None:
            pcm[0] = 5000
        self.audio = bytearray(pcm.tobytes())
        self.arrivals = [(len(self.audio), voice_at)] if voice_at is not None else []
        self.first_at = voice_at


def test_conversation_turns_get_their_own_transcripts_and_latency(monkeypatch):
    import listen_and_play
    from benchmarks import latency

    speech = np.ones(RATE, "<i2")  # each question voiced for 1 s
    ends = [10.0, 20.0, 30.0]
    monkeypatch.setattr(listen_and_play, "converse", lambda *a, **k: [(ScriptedReply(10.5), ends[0]),
                                                                       (ScriptedReply(19.5), ends[1])])

    class Server:
        lines = [(9.5, "what is"), (10.2, "the time"), (19.6, "why")]  # the first question heard in two parts

        def user_lines_between(self, start, end):
            return [text for at, text in self.lines if start <= at < end]

    turns = latency.converse_all(Server(), "localhost", (1, 2), [("What is the time?", speech), ("Why?", speech),
                                                                  ("Who?", speech)], run=0)
    assert [(t.turn, t.mode, t.heard) for t in turns] == [(1, "conversation", "what is the time"), (2, "conversation", "why")]
    assert turns[0].heard_s == pytest.approx(0.5)
    assert turns[1].heard_s == pytest.approx(-0.5)  # the previous reply's tail: summarize_turns leaves it out
    assert summarize_turns(turns)["early"] == 1


def test_concurrent_conversation_marks_early_and_missing_turns(monkeypatch):
    import listen_and_play
    from benchmarks.concurrency import converse_turns

    speech = np.ones(RATE, "<i2")
    monkeypatch.setattr(listen_and_play, "converse", lambda *a, **k: [(ScriptedReply(10.8), 10.0), (ScriptedReply(19.0), 20.0)])
    turns = converse_turns("localhost", (1, 2), [("a", speech), ("b", speech), ("c", speech)], clients=2, client=1)
    assert [(t.step, t.heard_s is not None, bool(t.error)) for t in turns] == [(0, True, False), (1, False, True), (2, False, True)]
    assert turns[0].heard_s == pytest.approx(0.8)
    assert all(t.clients == 2 and t.client == 1 for t in turns)


def test_latency_cli_runs_both_modes_by_default_and_floors_on_request():
    from benchmarks.latency import parse_args

    args, server = parse_args(["--", "--chat_size", "4"])
    assert (args.mode, args.floors, server) == ("both", False, ["--chat_size", "4"])
    args, _ = parse_args(["--mode", "fresh", "--floors"])
    assert (args.mode, args.floors) == ("fresh", True)
    with pytest.raises(SystemExit):
        parse_args(["--mode", "sometimes"])
