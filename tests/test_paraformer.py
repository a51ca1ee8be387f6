"""STT paraformer (FunASR) on a tiny random Paraformer built with funasr's own classes and loaded by path through
funasr.AutoModel: what can be asserted without trained weights (it runs, the tag, the reference flags, errors)."""
import time

import pytest
import torch

from tests.stt_helpers import built_model, make_stt_handler, segment
from tests.tiny_reference_models import PARAFORMER_TOKENS, build_paraformer
from utils.errors import ConfigError
from utils.pipeline.messages import Transcript

model_dir = built_model(build_paraformer, "paraformer")


def make_handler(*flags):
    return make_stt_handler("--stt", "paraformer", *flags)


def test_the_reference_flags_load_a_model_directory_and_transcripts_are_chinese(model_dir):
    threads = torch.get_num_threads()
    handler = make_handler("--paraformer_stt_model_name", model_dir, "--paraformer_stt_device", "cpu")
    [transcript] = list(handler.process(segment()))
    assert isinstance(transcript, Transcript) and transcript.language == "zh"
    assert transcript.text and set(transcript.text) <= set("".join(PARAFORMER_TOKENS[3:-1]))  # its own characters, no spaces
    assert torch.get_num_threads() == threads  # FunASR would set the shared thread count to 4


def test_spaces_go_between_chinese_characters_only():
    from STT.paraformer_handler import tidy

    assert tidy(" 你 好 世 界 ") == "你好世界"
    assert tidy("今 天 hello world 好") == "今天 hello world 好"


def test_a_missing_directory_is_one_line():
    with pytest.raises(ConfigError, match="Paraformer model directory not found: /no/such/paraformer"):
        make_handler("--stt_model_name", "/no/such/paraformer")


def test_an_unreachable_modelscope_is_one_line_at_once(monkeypatch):
    from STT import paraformer_handler

    monkeypatch.setattr(paraformer_handler, "modelscope_reachable", lambda: False)
    monkeypatch.setattr(paraformer_handler, "cached_model", lambda name: None)
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        make_handler()
    assert "'paraformer-zh' is not a local directory nor in the ModelScope cache" in str(e.value)
    assert "\n" not in str(e.value) and time.monotonic() - started < 5


def test_a_directory_of_something_else_is_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text("model: NoSuchModel\n")
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="cannot load Paraformer model") as e:
        make_handler("--stt_model_name", str(tmp_path))
    assert "\n" not in str(e.value)
