"""The benchmark's pure parts: WER, percentiles, where a reply's voice starts and when it played, the table."""
import numpy as np
import pytest

from benchmarks.floors import StageTimes, fastest, vad_wait_s
from benchmarks.latency import parse_args, with_bench_flags
from benchmarks.measures import (
    RATE,
    edit_distance,
    median,
    percentile,
    sample_times,
    voiced_span,
    word_error_rate,
    words,
)
from benchmarks.report import TurnResult, format_table, summarize


def test_percentile_interpolates_like_numpy():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    for q in (0, 10, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert median([3.0]) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_words_ignore_case_and_punctuation():
    assert words("What's the capital of France?") == ["what's", "the", "capital", "of", "france"]
    assert words("  ") == []


def test_edit_distance_counts_substitutions_deletions_insertions():
    assert edit_distance("a b c".split(), "a b c".split()) == 0
    assert edit_distance("a b c".split(), "a x c".split()) == 1
    assert edit_distance("a b c".split(), "a c".split()) == 1
    assert edit_distance("a b c".split(), "a b c d e".split()) == 2
    assert edit_distance([], "a b".split()) == 2


def test_word_error_rate_is_over_all_reference_words():
    refs = ["Why is the sky blue?", "How do I boil an egg?"]  # 5 + 6 words
    assert word_error_rate(refs, ["why is the sky blue", "how do I boil an egg"]) == 0.0
    assert word_error_rate(refs, ["Why is this guy blue?", None]) == pytest.approx((2 + 6) / 11)
    with pytest.raises(ValueError):
        word_error_rate(refs, ["one"])


def test_voiced_span_skips_silence_and_quiet_noise():
    samples = np.zeros(1000, dtype="<i2")
    samples[100] = 50  # below the threshold: still silence
    samples[300], samples[700] = -2000, 1500
    assert voiced_span(samples) == (300, 700)
    assert voiced_span(np.zeros(10, dtype="<i2")) is None


def test_sample_times_follow_arrival_and_the_play_schedule():
    block = 1600  # bytes: 800 samples, 50 ms
    # Two blocks at once at t=10 (the second plays after the first), a third late at t=11.
    arrivals = [(block, 10.0), (block, 10.0), (block, 11.0)]
    assert sample_times(arrivals, 0) == (10.0, 10.0)
    arrived, played = sample_times(arrivals, 800 + 400)  # middle of the second block
    assert arrived == 10.0
    assert played == pytest.approx(10.0 + 0.05 + 400 / RATE)
    arrived, played = sample_times(arrivals, 1600)  # first sample of the late block plays when it arrives
    assert (arrived, played) == (11.0, 11.0)
    assert sample_times(arrivals, 2400) is None  # never arrived


def test_sample_split_across_blocks_counts_once_both_bytes_arrived():
    arrivals = [(3, 5.0), (3, 6.0)]  # sample 1 is bytes 2 and 3
    arrived, played = sample_times(arrivals, 1)
    assert arrived == 6.0
    assert played >= 6.0


def stage_times(question, stt=0.5, llm=0.2, tts=0.1, lead=0.3, **kw):
    return StageTimes(question, audio_s=2.0, stt_s=stt, transcript=question, llm_first_token_s=0.05,
                      llm_first_sentence_s=llm, llm_tokens=11, llm_decode_s=0.1, first_sentence="Yes.",
                      tts_first_audio_s=tts, tts_total_s=tts, tts_audio_s=1.0, tts_lead_silence_s=lead, **kw)


def test_floor_takes_each_stage_at_its_fastest_try():
    tries = [stage_times("Hi", stt=0.9, llm=0.2, tts=0.3), stage_times("Hi", stt=0.4, llm=0.6, tts=None),
             stage_times("Hi", stt=0.5, llm=0.5, tts=0.1)]
    best = fastest(tries)
    assert (best.stt_s, best.llm_first_sentence_s, best.tts_first_audio_s) == (0.4, 0.2, 0.1)
    assert best.floor_s(0.3) == pytest.approx(0.3 + 0.4 + 0.2 + 0.1 + 0.3)
    assert stage_times("Hi", llm=None).floor_s(0.3) is None


def test_vad_wait_is_the_silence_plus_one_window():
    class Vad:
        min_silence_ms = 300
    assert vad_wait_s(Vad) == pytest.approx(0.332)


def test_summary_pairs_each_question_with_its_floor():
    turns = [TurnResult("Why is the sky blue?", 0, 2.0, 1.6, "why is the sky blue"),
             TurnResult("How do I boil an egg?", 0, 3.0, 2.5, "how do i boil an egg"),
             TurnResult("Is it late?", 0, None, None, "")]
    floors = [stage_times("Why is the sky blue?"), stage_times("How do I boil an egg?", stt=1.0),
              stage_times("Is it late?")]
    s = summarize(turns, floors, vad_wait_s=0.332, server_marks=[{"transcript_ms": 400.0}, {"transcript_ms": 600.0}])
    assert s["replies"] == "2/3"
    assert s["v2v_median_ms"] == 2500.0
    assert s["v2v_p90_ms"] == 2900.0
    assert s["floor_median_ms"] == pytest.approx(1432.0)  # 0.332 + 0.5 + 0.2 + 0.1 + 0.3
    # sky: 2.0 - 1.432, egg: 3.0 - 1.932 -> median of 0.568 and 1.068
    assert s["overhead_median_ms"] == pytest.approx(818.0)
    assert s["server_ms"] == {"transcript": 500.0, "first_sentence": None, "first_audio_sent": None}
    assert s["stt_rtf"] == pytest.approx(2.0 / 6.0, abs=1e-3)
    assert s["llm_tokens_per_s"] == pytest.approx(100.0)
    assert s["wer_server"] == pytest.approx(3 / 14)  # "Is it late?" was not heard: 3 deletions


def test_table_has_every_row_and_marks_missing_values():
    s = summarize([TurnResult("Hi there", 0, None, None, "")], [stage_times("Hi there", llm=None)], 0.332)
    table = format_table({**s, "startup_s": 12.34, "peak_memory_mb": 800, "machine": "test box"})
    lines = table.splitlines()
    assert lines[0].startswith("| metric")
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    assert "| 0/1 |" in table
    assert "voice-to-voice, median" in table and "n/a" in table
    assert "12.3 s" in table and "800 MB" in table and "test box" in table


def test_cli_splits_server_flags_and_adds_free_ports():
    args, server = parse_args(["--runs", "2", "--", "--lm_gen_max_tokens", "48"])
    assert args.runs == 2 and server == ["--lm_gen_max_tokens", "48"]
    flags = with_bench_flags(server, "/tmp/m.jsonl")
    assert flags[:2] == server and "--recv_port" in flags and "--metrics_file" in flags
    assert with_bench_flags(["--recv_port=5000", "--metrics_file", "x"], "m").count("--recv_port") == 0
    assert with_bench_flags(["config.json"], "m") == ["config.json"]


def test_a_speculative_start_overlaps_the_work_with_the_silence_wait():
    from benchmarks.floors import StageTimes

    times = StageTimes("q", 1.0, stt_s=0.06, transcript="q", llm_first_sentence_s=0.1, tts_first_audio_s=0.02)
    assert times.floor_s(0.332) == pytest.approx(0.332 + 0.18)
    assert times.floor_s(0.332, start_wait_s=0.182) == pytest.approx(0.182 + 0.18)  # work outlasts the wait
    assert times.floor_s(0.332, start_wait_s=0.05) == pytest.approx(0.332)  # the confirmation is the bound


def test_vad_lag_pairs_client_and_server_clocks_in_order():
    from benchmarks.report import TurnResult, vad_lags

    turns = [TurnResult("a", 0, 0.5, 0.4, "a", question_end_clock=10.0), TurnResult("b", 0, 0.5, 0.4, "b", question_end_clock=20.0)]
    marks = [{"speech_end_clock": 10.05}, {"speech_end_clock": 20.07}]
    assert vad_lags(turns, marks) == pytest.approx([0.05, 0.07])
    assert vad_lags(turns, marks[:1]) == []  # a turn without its record: no guessing


def test_barge_in_onset_is_where_the_user_s_speech_becomes_audible_in_the_room():
    from benchmarks.barge_in import user_onset

    rng = np.random.default_rng(1)
    assistant = (rng.standard_normal(16000 * 5) * 3000).astype("<i2")
    said = np.concatenate([np.zeros(800, "<i2"), (rng.standard_normal(8000) * 5000).astype("<i2")])  # 50 ms lead-in
    mix = np.zeros(16000 * 5, "<i2")
    mix[480:] = assistant[:-480] // 2  # the assistant's voice reaches the microphone 30 ms later, softer
    mix[32000:32000 + len(said)] += said
    assert user_onset(assistant, mix, 480, 30000, said) == 32000 + 800
