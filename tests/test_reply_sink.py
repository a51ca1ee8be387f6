"""connections/reply_sink.py: how both the socket server and local mode hand reply audio on and record it."""
import time

from connections.reply_sink import ReplySink
from utils.pipeline.messages import AudioOut, Conversation, Turn


class RecordingMetrics:
    def __init__(self):
        self.events = []

    def audio_sent(self, turn):
        self.events.append(("sent", turn.id))

    def turn_done(self, turn):
        self.events.append(("done", turn.id))


def test_the_reply_sink_plays_then_records_and_the_last_block_ends_the_turn():
    played, metrics = [], RecordingMetrics()
    sink = ReplySink(lambda pcm: played.append(pcm) or metrics.events.append(("play", len(pcm))), metrics)
    turn = Turn(Conversation(), time.monotonic())
    for item in (AudioOut(b"\0" * 4, turn), AudioOut(b"\0" * 2, turn, last=True), AudioOut(b"", turn, last=True)):
        sink.deliver(item)
    assert metrics.events == [("play", 4), ("sent", turn.id), ("play", 2), ("sent", turn.id), ("done", turn.id),
                              ("done", turn.id)]
