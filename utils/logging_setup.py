import importlib.util
import logging
import sys


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
    )
    if level.lower() != "debug":
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one INFO line per utterance otherwise
        for name in ("httpx", "httpx2"):  # the openai SDK's transport: one INFO line per request otherwise
            logging.getLogger(name).setLevel(logging.WARNING)
    if level.lower() == "debug" and importlib.util.find_spec("torch") is not None:
        import torch

        # Recompilations and graph breaks are what make torch.compile'd backends slow.
        torch._logging.set_logs(graph_breaks=True, recompiles=True, cudagraphs=True)
