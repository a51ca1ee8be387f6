"""Does llama.cpp run on this CPU? A few tokens from the bundled model, on one thread and on two (the pipeline uses
both). A build for another CPU crashes here, in the first decode, with a segmentation fault: the exit code says so.

    python3 scripts/check_llama_cpp.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from llama_cpp import Llama, llama_print_system_info

    from LLM.bundled_model import bundled_model_path

    print(llama_print_system_info().decode().strip())
    for threads in (1, 2, 1):
        model = Llama(model_path=bundled_model_path(), n_threads=threads, n_ctx=256, verbose=False)
        text = model.create_completion("The capital of France is", max_tokens=8, temperature=0.0)["choices"][0]["text"]
        print(f"{threads} thread(s): {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
