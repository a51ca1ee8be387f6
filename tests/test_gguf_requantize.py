"""The bundled GGUF, requantized once to Q8_0 by llama.cpp for speed, answers as the original does."""
import logging
import os

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from arguments_classes.stage_arguments import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from LLM.bundled_model import bundled_model_path  # noqa: E402
from LLM.gguf_requantize import requantized  # noqa: E402

Q8_0 = 7  # llama_ftype LLAMA_FTYPE_MOSTLY_Q8_0, as general.file_type in the file's metadata


def answer(path: str, question: str) -> tuple[str, str | None]:
    model = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=1, verbose=False)
    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": question}]
    reply = model.create_chat_completion(messages, max_tokens=12, temperature=0.0)
    return reply["choices"][0]["message"]["content"], model.metadata.get("general.file_type")


def test_the_bundled_model_is_requantized_once_and_answers_as_the_original(tmp_path):
    original = bundled_model_path()
    fast = requantized(original, tmp_path)
    assert fast != original and os.path.dirname(fast) == str(tmp_path)
    modified = os.stat(fast).st_mtime_ns
    assert requantized(original, tmp_path) == fast and os.stat(fast).st_mtime_ns == modified  # the cache, not again
    text, file_type = answer(fast, "What is the capital of France?")
    assert int(file_type) == Q8_0
    assert "Paris" in text and "Paris" in answer(original, "What is the capital of France?")[0]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no scratch file left


def test_a_file_llama_cpp_cannot_read_is_run_as_it_is_after_one_warning(tmp_path, caplog):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with caplog.at_level(logging.WARNING):
        assert requantized(str(broken), tmp_path / "cache") == str(broken)
    assert "could not requantize" in caplog.text
    assert not [name for name in os.listdir(tmp_path / "cache")]  # nothing half-written kept
