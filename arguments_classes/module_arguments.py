from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import Port


@dataclass
class ModuleArguments:
    mode: str = field(
        default="socket",
        metadata={"help": "'socket': serve a remote client (listen_and_play.py); 'local': this machine's microphone and speakers."},
    )
    device: Optional[str] = field(
        default=None,
        metadata={"help": "Device for every component ('cpu', 'cuda', 'mps'); a component's own *_device flag wins."},
    )
    stt: str = field(default="faster-whisper", metadata={"help": "Speech-to-text backend."})
    llm: str = field(default="llama-cpp", metadata={"help": "Language-model backend."})
    tts: str = field(default="hibari", metadata={"help": "Text-to-speech backend."})
    local_mac_optimal_settings: bool = field(
        default=False,
        metadata={"help": "Use the Apple-silicon stack (mps, moonshine, mlx-lm, hibari) and local mode; flags you give win. Needs pip install mlx-lm."},
    )
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error. debug also turns on torch's compile logs."})
    metrics_file: Optional[str] = field(
        default=None, metadata={"help": "Append one JSON object per turn (stage timestamps) to this file."}
    )
    metrics_port: Optional[Port] = field(
        default=None,
        metadata={"help": "Serve /healthz (200 once every stage runs, 503 before and while stopping) and Prometheus "
                          "/metrics on this port, on --recv_host's address; default: off."},
    )
