"""The real server (handlers, queues, sockets on loopback) in-process, with instant fake models."""
import numpy as np

from arguments_classes.parsing import parse_arguments
from listen_and_play import talk_with_file
from s2s_pipeline import build_pipeline
from tests.conftest import free_port
from tests.fakes import EchoLLM, ScriptedVADModel, ToneTTS, tone_pcm
from utils.metrics import TurnMetrics
from utils.pipeline.queues import Queues

QUESTION = np.frombuffer(tone_pcm(0.8), dtype="<i2")


class FakeServer:
    def __init__(self, whisper, *flags):
        self.recv_port, self.send_port = free_port(), free_port()
        config = parse_arguments(["--recv_port", str(self.recv_port), "--send_port", str(self.send_port),
                                  "--init_chat_prompt", "Be brief.", "--chat_size", "2",
                                  "--speech_pad_ms", "30",  # tests derive transcripts from utterance lengths
                                  *flags])
        self.llm, self.tts, self.queues = EchoLLM(), ToneTTS(), Queues()
        self.metrics = TurnMetrics()
        models = {"vad": ScriptedVADModel(), "stt": whisper, "llm": self.llm, "tts": self.tts}
        self.manager = build_pipeline(config, self.queues, self.metrics, models=models)
        self.llm.requests.clear()  # forget the warm-up calls
        self.tts.texts.clear()
        self.manager.start()

    def ask(self, question=QUESTION, **kwargs):
        options = {"silence_s": 5, "reply_idle_s": 0.4, "timeout_s": 10, **kwargs}
        reply, _ = talk_with_file("127.0.0.1", self.recv_port, self.send_port, question, **options)
        return reply

    def registry_sessions(self):
        return self.manager.handlers[0].registry.sessions()

    def stop(self):
        return self.manager.stop(timeout=2)
