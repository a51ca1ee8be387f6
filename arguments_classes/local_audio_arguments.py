from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import NonNegativeInt, PositiveInt


@dataclass
class LocalAudioArguments:
    input_device: Optional[str] = field(default=None, metadata={"help": "Microphone: a device index or (part of) its name; default: the system's."})
    output_device: Optional[str] = field(default=None, metadata={"help": "Speaker: a device index or (part of) its name; default: the system's."})
    list_devices: bool = field(default=False, metadata={"help": "Print the audio devices and exit."})
    local_blocksize: PositiveInt = field(
        default=128,
        metadata={"help": "Samples per audio block (128 at 16 kHz = 8 ms). Smaller blocks hear the user and stop a "
                          "reply they talk over sooner (the devices buffer about two blocks each way); 256 if the log "
                          "counts many over/underruns."},
    )
    local_latency: str = field(
        default="low",
        metadata={"help": "PortAudio latency of the microphone and speaker streams: 'low' (a reply you talk over stops "
                          "sooner) or 'high' (more buffering, for a device that crackles at low)."},
    )
    playback_tail_ms: NonNegativeInt = field(default=300, metadata={"help": "After the reply has played, keep the microphone closed this long (echo tail)."})
