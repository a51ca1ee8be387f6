"""Results -> summary numbers -> the Markdown table the benchmark prints (and the README carries)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from benchmarks.floors import StageTimes
from benchmarks.measures import median, percentile, word_error_rate

SERVER_MARKS = ("transcript", "first_sentence", "first_audio_sent")


@dataclass
class TurnResult:
    """One question asked to the server, timed at the client; seconds after the question's last voiced sample."""

    question: str
    run: int
    heard_s: float | None  # when the reply's first voiced sample played (None: no voiced reply)
    first_byte_s: float | None  # when the reply's first byte arrived, silence or not
    heard: str  # the server's transcript(s) of the question
    question_end_clock: float | None = None  # time.monotonic() when the question's last voiced sample was sent
    turn: int = 1  # the question's place in the list: in a conversation, its turn; fresh, the same place without history
    mode: str = "fresh"  # "conversation": every question on one connection; "fresh": each on a new one


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _median_ms(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _ms(median(present)) if present else None


def _median_of_ms(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(median(present), 1) if present else None


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator > 0 else None


def vad_lags(turns: Sequence[TurnResult], server_marks: Sequence[dict]) -> list[float]:
    """Seconds from each question's last voiced sample (client) to the VAD's end-of-speech stamp (server):
    silero's speech probability fades over a few windows after the voice stops. Paired in order, and only
    when every turn has exactly one server record."""
    if len(turns) != len(server_marks):
        return []
    return [m["speech_end_clock"] - t.question_end_clock for t, m in zip(turns, server_marks)
            if t.question_end_clock is not None and "speech_end_clock" in m]


def summarize(turns: Sequence[TurnResult], floors: Sequence[StageTimes], vad_wait_s: float,
              server_marks: Sequence[dict] = (), start_wait_s: float | None = None) -> dict:
    heard = [t.heard_s for t in turns if t.heard_s is not None]
    floor_values = [f.floor_s(vad_wait_s, start_wait_s) for f in floors]
    overheads = []
    for question in dict.fromkeys(t.question for t in turns):
        q_heard = [t.heard_s for t in turns if t.question == question and t.heard_s is not None]
        q_floor = [v for f, v in zip(floors, floor_values) if f.question == question and v is not None]
        if q_heard and q_floor:
            overheads.append(median(q_heard) - median(q_floor))
    return {
        "replies": f"{len(heard)}/{len(turns)}",
        "v2v_median_ms": _ms(median(heard)) if heard else None,
        "v2v_p90_ms": _ms(percentile(heard, 90)) if heard else None,
        "first_byte_median_ms": _median_ms([t.first_byte_s for t in turns]),
        "floor_median_ms": _median_ms(floor_values),
        "overhead_median_ms": _ms(median(overheads)) if overheads else None,
        "floor_parts_ms": {
            "vad_wait": _ms(vad_wait_s),
            "speculative_start": _ms(start_wait_s) if start_wait_s is not None else None,
            "stt": _median_ms([f.stt_s for f in floors]),
            "llm_first_sentence": _median_ms([f.llm_first_sentence_s for f in floors]),
            "tts_first_audio": _median_ms([f.tts_first_audio_s for f in floors]),
            "tts_lead_silence": _median_ms([f.tts_lead_silence_s for f in floors if f.tts_first_audio_s is not None]),
        },
        "server_ms": {name: _median_of_ms([m.get(f"{name}_ms") for m in server_marks]) for name in SERVER_MARKS},
        "vad_lag_ms": _median_ms(vad_lags(turns, server_marks)),
        "llm_first_token_ms": _median_ms([f.llm_first_token_s for f in floors]),
        "stt_rtf": _ratio(sum(f.stt_s for f in floors), sum(f.audio_s for f in floors)),
        "tts_rtf": _ratio(sum(f.tts_total_s for f in floors), sum(f.tts_audio_s for f in floors)),
        "llm_tokens_per_s": _ratio(sum(max(f.llm_tokens - 1, 0) for f in floors), sum(f.llm_decode_s for f in floors)),
        "wer_server": word_error_rate([t.question for t in turns], [t.heard for t in turns]) if turns else None,
        "wer_in_process": word_error_rate([f.question for f in floors], [f.transcript for f in floors]) if floors else None,
    }


def _fmt(value, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{unit}" if isinstance(value, (int, float)) else f"{value}{unit}"


def format_table(s: dict) -> str:
    """A two-column Markdown table of a summary (summarize() plus start-up, memory and machine)."""
    parts, server = s["floor_parts_ms"], s["server_ms"]
    rows = [
        ("replies with voice", _fmt(s["replies"])),
        ("voice-to-voice, median", _fmt(s["v2v_median_ms"], " ms")),
        ("voice-to-voice, p90", _fmt(s["v2v_p90_ms"], " ms")),
        ("first reply byte (silent or not), median", _fmt(s["first_byte_median_ms"], " ms")),
        ("floor (stages alone, back to back), median", _fmt(s["floor_median_ms"], " ms")),
        ("overhead over the floor, median", _fmt(s["overhead_median_ms"], " ms")),
        ("of which: the VAD's end-of-speech stamp after the last voiced sample, median", _fmt(s.get("vad_lag_ms"), " ms")),
        ("floor parts: VAD silence wait / speculative start / STT / LLM first sentence / TTS first audio / "
         "TTS leading silence",
         " / ".join(_fmt(parts.get(k)) for k in ("vad_wait", "speculative_start", "stt", "llm_first_sentence",
                                                  "tts_first_audio", "tts_lead_silence")) + " ms"),
        ("server marks after its VAD's end of speech: transcript / first sentence / first audio sent",
         " / ".join(_fmt(server[k]) for k in SERVER_MARKS) + " ms"),
        ("STT real-time factor", _fmt(s["stt_rtf"], digits=3)),
        ("TTS real-time factor", _fmt(s["tts_rtf"], digits=3)),
        ("LLM first token, median", _fmt(s["llm_first_token_ms"], " ms")),
        ("LLM tokens/s (decoding)", _fmt(s["llm_tokens_per_s"])),
        ("STT word error rate: server / in-process",
         f"{_fmt(s['wer_server'], digits=3)} / {_fmt(s['wer_in_process'], digits=3)}"),
        ("server start-up (to 'ready')", _fmt(s.get("startup_s"), " s", 1)),
        ("server peak memory (VmHWM)", _fmt(s.get("peak_memory_mb"), " MB")),
    ]
    if s.get("machine"):
        rows.append(("machine", s["machine"]))
    width = max(len(label) for label, _ in rows)
    lines = [f"| {'metric'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {label.ljust(width)} | {value} |" for label, value in rows]
    return "\n".join(lines)


def format_questions(turns: Sequence[TurnResult], floors: Sequence[StageTimes], vad_wait_s: float,
                     start_wait_s: float | None = None) -> str:
    """One line per question: medians over the runs, and what the server heard."""
    lines = ["| question | voice-to-voice ms | floor ms | server heard |", "|---|---|---|---|"]
    for question in dict.fromkeys(t.question for t in turns):
        mine = [t for t in turns if t.question == question]
        heard = _median_ms([t.heard_s for t in mine])
        floor = _median_ms([f.floor_s(vad_wait_s, start_wait_s) for f in floors if f.question == question])
        lines.append(f"| {question} | {_fmt(heard)} | {_fmt(floor)} | {mine[-1].heard or '(nothing)'} |")
    return "\n".join(lines)


# --- by turn: does latency grow as the conversation does? ---

TURN_BUCKETS = (("1", 1, 1), ("2-5", 2, 5), ("6+", 6, None))  # name, first turn, last turn (None: no end)
TURN_MARKS = ("transcript", "first_token", "first_sentence", "first_audio_sent")
# A server record belongs to the turn whose question ended nearest its end-of-speech stamp, within this window:
# the VAD stamps the end ~50 ms after the last voiced sample, and the next question ends many seconds later.
MARK_WINDOW_S = (-0.5, 1.5)
MODE_LABELS = {"conversation": "conversation: every question on one connection",
               "fresh": "fresh: each question on a new connection"}


def bucket_of(turn: int) -> str:
    for name, first, last in TURN_BUCKETS:
        if turn >= first and (last is None or turn <= last):
            return name
    raise ValueError(f"turn {turn}: turns count from 1")


def slope_per_turn(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of value against turn; None unless at least two different turns were measured."""
    if len({turn for turn, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)


def _median_p90_ms(values: Sequence[float]) -> dict:
    return {"median_ms": _ms(median(values)) if values else None,
            "p90_ms": _ms(percentile(values, 90)) if values else None}


def summarize_turns(turns: Sequence[TurnResult]) -> dict:
    """Voice-to-voice overall, per turn bucket, and its slope over the turns. A reply whose voice played
    before its question ended is left out and counted as `early`: it is the tail of the previous reply, or
    an answer to half the question, not a latency."""
    timed = [t for t in turns if t.heard_s is not None and t.heard_s >= 0]
    slope = slope_per_turn([(t.turn, t.heard_s) for t in timed])
    return {
        "replies": f"{len(timed)}/{len(turns)}",
        "early": sum(t.heard_s is not None and t.heard_s < 0 for t in turns),
        **_median_p90_ms([t.heard_s for t in timed]),
        "buckets": {name: {"turns": sum(bucket_of(t.turn) == name for t in timed),
                           **_median_p90_ms([t.heard_s for t in timed if bucket_of(t.turn) == name])}
                    for name, _, _ in TURN_BUCKETS},
        "slope_ms_per_turn": None if slope is None else round(slope * 1000, 2),
    }


def match_marks(turns: Sequence[TurnResult], records: Sequence[dict],
                window_s: tuple[float, float] = MARK_WINDOW_S) -> list[dict | None]:
    """Each turn's server record (utils/metrics.py), by the end-of-speech stamp nearest the question's end.
    Both are time.monotonic(), one clock for every process on the machine; a turn without one gets None."""
    matched = []
    for t in turns:
        near = [] if t.question_end_clock is None else [
            r for r in records if "speech_end_clock" in r
            and window_s[0] <= r["speech_end_clock"] - t.question_end_clock <= window_s[1]]
        matched.append(min(near, key=lambda r: abs(r["speech_end_clock"] - t.question_end_clock), default=None))
    return matched


def marks_by_bucket(turns: Sequence[TurnResult], records: Sequence[dict]) -> dict:
    """Median ms after the server's end of speech of each mark, per turn bucket, and each mark's slope per turn."""
    pairs = [(t.turn, m) for t, m in zip(turns, match_marks(turns, records)) if m is not None]
    by_bucket = {}
    for name, _, _ in TURN_BUCKETS:
        mine = [m for turn, m in pairs if bucket_of(turn) == name]
        by_bucket[name] = {"turns": len(mine), **{k: _median_of_ms([m.get(f"{k}_ms") for m in mine]) for k in TURN_MARKS}}
    slopes = {k: slope_per_turn([(turn, m[f"{k}_ms"]) for turn, m in pairs if f"{k}_ms" in m]) for k in TURN_MARKS}
    by_bucket["slope_ms_per_turn"] = {k: None if v is None else round(v, 2) for k, v in slopes.items()}
    return by_bucket


def _slope(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} ms/turn"


def _median_p90_cell(stats: dict) -> str:
    return "n/a" if stats["median_ms"] is None else f"{_fmt(stats['median_ms'])} / {_fmt(stats['p90_ms'])} ms"


def format_turn_table(summaries: dict[str, dict]) -> str:
    """One row per mode (summarize_turns() of its turns)."""
    buckets = [name for name, _, _ in TURN_BUCKETS]
    lines = ["| mode | replies with voice | median | p90 | "
             + " | ".join(f"turn{'s' if name != '1' else ''} {name}: median / p90" for name in buckets)
             + " | slope (least squares) |",
             "|---|---|---|---|" + "---|" * len(buckets) + "---|"]
    for mode, s in summaries.items():
        replies = s["replies"] + (f" ({s['early']} began before the question ended)" if s["early"] else "")
        cells = [_median_p90_cell(s["buckets"][n]) for n in buckets]
        lines.append(f"| {MODE_LABELS.get(mode, mode)} | {replies} | {_fmt(s['median_ms'], ' ms')} | "
                     f"{_fmt(s['p90_ms'], ' ms')} | " + " | ".join(cells) + f" | {_slope(s['slope_ms_per_turn'])} |")
    return "\n".join(lines)


def format_marks_table(marks: dict[str, dict]) -> str:
    """Server marks by mode and turn bucket (marks_by_bucket() of each mode)."""
    lines = ["| mode | turns | measured | " + " | ".join(k.replace("_", " ") for k in TURN_MARKS) + " |",
             "|---|---|---|" + "---|" * len(TURN_MARKS)]
    for mode, by_bucket in marks.items():
        for name, _, _ in TURN_BUCKETS:
            row = by_bucket[name]
            lines.append(f"| {mode} | {name} | {row['turns']} | " + " | ".join(_fmt(row[k], " ms") for k in TURN_MARKS) + " |")
        slopes = by_bucket["slope_ms_per_turn"]
        lines.append(f"| {mode} | slope | | " + " | ".join(_slope(slopes[k]) for k in TURN_MARKS) + " |")
    return "\n".join(lines)


def format_turns(turns: Sequence[TurnResult]) -> str:
    """One line per turn: each mode's median over the runs, and what the server heard (first mode's last run)."""
    modes = list(dict.fromkeys(t.mode for t in turns))
    lines = ["| turn | question | " + " | ".join(f"{m} ms" for m in modes) + " | server heard |",
             "|---|---|" + "---|" * len(modes) + "---|"]
    for turn in sorted({t.turn for t in turns}):
        mine = [t for t in turns if t.turn == turn]
        cells = [_fmt(_median_ms([t.heard_s for t in mine if t.mode == m])) for m in modes]
        heard = next((t.heard for m in modes for t in reversed(mine) if t.mode == m), "")
        lines.append(f"| {turn} | {mine[0].question} | " + " | ".join(cells) + f" | {heard or '(nothing)'} |")
    return "\n".join(lines)
