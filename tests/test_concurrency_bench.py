"""The pure parts of benchmarks/concurrency.py: who asks what, the reply's first voice, memory lines, the table."""
import numpy as np
import pytest

from benchmarks.concurrency import (
    ConcurrentTurn,
    client_questions,
    first_voice_s,
    format_table,
    parse_args,
    proc_status_mb,
    start_delays,
    summarize_round,
)
from benchmarks.measures import RATE


@pytest.mark.parametrize("clients", [1, 2, 3, 4, 8])
def test_simultaneous_clients_ask_different_questions_at_every_step(clients):
    schedules = [client_questions(8, clients, c, per_client=4) for c in range(clients)]
    for step in range(4):
        asked = [schedule[step] for schedule in schedules]
        assert len(set(asked)) == clients, (step, asked)
    assert all(len(s) == 4 and all(0 <= q < 8 for q in s) for s in schedules)


def test_client_questions_walk_the_list_and_wrap():
    assert client_questions(8, 1, 0, 4) == [0, 1, 2, 3]
    assert client_questions(8, 2, 1, 4) == [4, 5, 6, 7]
    assert client_questions(8, 4, 3, 4) == [6, 7, 0, 1]
    assert client_questions(3, 1, 0, 5) == [0, 1, 2, 0, 1]


def test_first_voice_is_when_the_first_loud_sample_played():
    block = np.zeros(800, "<i2")  # 50 ms of silence per block
    voiced = block.copy()
    voiced[400] = 5000
    pcm = block.tobytes() + voiced.tobytes()
    # Both blocks arrive at t=10: the loud sample plays after the first block and 400 samples of the second.
    arrivals = [(1600, 10.0), (1600, 10.0)]
    assert first_voice_s(pcm, arrivals, question_end=9.0) == pytest.approx(1.0 + 0.05 + 400 / RATE)
    assert first_voice_s(block.tobytes(), [(1600, 10.0)], 9.0) is None  # silence only: no answer
    assert first_voice_s(b"", [], 9.0) is None
    assert first_voice_s(pcm + b"\x01", arrivals + [(1, 10.1)], 9.0) is not None  # an odd trailing byte is ignored


def test_proc_status_lines_in_mb():
    status = "Name:\tpython\nVmHWM:\t  2097152 kB\nVmRSS:\t 1048576 kB\nThreads:\t12\n"
    assert proc_status_mb(status, "VmHWM") == 2048
    assert proc_status_mb(status, "VmRSS") == 1024
    assert proc_status_mb(status, "VmSwap") is None


def turn(heard_s):
    return ConcurrentTurn(clients=2, client=0, step=0, question="Why?", heard_s=heard_s, first_byte_s=heard_s)


def test_round_summary_counts_unanswered_turns_but_times_only_answered_ones():
    row = summarize_round(2, [turn(1.0), turn(None), turn(2.0), turn(4.0)], peak_mb=1234.4)
    assert (row["answered"], row["asked"]) == (3, 4)
    assert row["median_ms"] == 2000
    assert row["p90_ms"] == 3600  # between 2.0 and 4.0 at rank 1.8
    assert row["max_ms"] == 4000
    assert row["peak_memory_mb"] == 1234
    empty = summarize_round(4, [turn(None)], peak_mb=None)
    assert (empty["answered"], empty["asked"], empty["median_ms"], empty["max_ms"]) == (0, 1, None, None)


def test_table_has_a_row_per_round_and_the_rss_line():
    rows = [summarize_round(1, [turn(1.0)], 900.0), summarize_round(4, [turn(None)], None)]
    table = format_table(rows, 800.2, 950.7)
    lines = table.splitlines()
    assert lines[0].startswith("| clients | turns answered / asked | median | p90 | max |")
    assert lines[2] == "| 1 | 1 / 1 | 1000 ms | 1000 ms | 1000 ms | 900 MB |"
    assert lines[3] == "| 4 | 0 / 1 | n/a | n/a | n/a | n/a |"
    assert lines[-1] == "server RSS (VmRSS): 800 MB before the first round, 951 MB after the last"


def test_flags_after_double_dash_go_to_the_server():
    args, server = parse_args(["--clients", "1", "3", "--", "--lm_gen_max_tokens", "48"])
    assert args.clients == [1, 3] and args.per_client == 10 and args.mode == "conversation"
    assert server == ["--lm_gen_max_tokens", "48"]
    with pytest.raises(SystemExit):
        parse_args(["--clients", "0"])


def test_start_delays_make_questions_start_or_end_together():
    lengths = [1.5, 2.0, 1.2]
    assert start_delays(lengths, "start") == [0.0, 0.0, 0.0]
    delays = start_delays(lengths, "end")
    assert delays == pytest.approx([0.5, 0.0, 0.8])
    assert len({round(d + n, 9) for d, n in zip(delays, lengths)}) == 1  # every question ends at the same moment
