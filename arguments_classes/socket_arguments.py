from dataclasses import dataclass, field

from arguments_classes.validation import Port, PositiveFloat, PositiveInt


@dataclass
class SocketReceiverArguments:
    recv_host: str = field(default="localhost", metadata={"help": "Address to receive client audio on; 0.0.0.0 exposes it to the network."})
    recv_port: Port = field(default=12345, metadata={"help": "Port that receives the client's 16 kHz int16 audio."})
    chunk_size: PositiveInt = field(default=1024, metadata={"help": "Bytes read from the client at a time."})
    max_sessions: PositiveInt = field(default=4, metadata={"help": "Clients served at once; one more is refused (its connection closed)."})
    max_sessions_per_host: PositiveInt = field(
        default=4, metadata={"help": "Clients served at once from one address (all local clients share 127.0.0.1)."}
    )
    idle_timeout_s: PositiveFloat = field(default=120.0, metadata={"help": "A client that sends nothing for this long is disconnected."})


@dataclass
class SocketSenderArguments:
    send_host: str = field(default="localhost", metadata={"help": "Address to send reply audio from; 0.0.0.0 exposes it to the network."})
    send_port: Port = field(default=12346, metadata={"help": "Port that sends the reply's 16 kHz int16 audio."})
