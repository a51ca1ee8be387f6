from dataclasses import dataclass, field
from typing import Annotated, Optional

from arguments_classes.validation import Range


@dataclass
class RealtimeArguments:
    realtime_port: Annotated[int, Range(0, 65535)] = field(
        default=8765,
        metadata={
            "help": "Port of the OpenAI Realtime-compatible WebSocket endpoint (ws://HOST:PORT/v1/realtime) and "
            "of the web page (http://HOST:PORT/), served beside the socket server on the same models; "
            "0 turns both off."
        },
    )
    realtime_host: str = field(
        default="localhost",
        metadata={
            "help": "Address of the Realtime endpoint and page. Another than this machine's loopback needs "
            "--realtime_api_key."
        },
    )
    realtime_api_key: Optional[str] = field(
        default=None,
        metadata={
            "help": "Key a Realtime client must send (Authorization: Bearer KEY, or the page's ?key=KEY); "
            "required when --realtime_host is not a loopback address."
        },
    )
