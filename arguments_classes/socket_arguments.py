from dataclasses import dataclass, field


@dataclass
class SocketReceiverArguments:
    recv_host: str = field(default="localhost", metadata={"help": "Address to receive client audio on; 0.0.0.0 exposes it to the network."})
    recv_port: int = field(default=12345, metadata={"help": "Port that receives the client's 16 kHz int16 audio."})
    chunk_size: int = field(default=1024, metadata={"help": "Bytes read from the client at a time."})
    max_sessions: int = field(default=4, metadata={"help": "Clients served at once; one more is refused (its connection closed)."})
    idle_timeout_s: float = field(default=120.0, metadata={"help": "A client that sends nothing for this long is disconnected."})


@dataclass
class SocketSenderArguments:
    send_host: str = field(default="localhost", metadata={"help": "Address to send reply audio from; 0.0.0.0 exposes it to the network."})
    send_port: int = field(default=12346, metadata={"help": "Port that sends the reply's 16 kHz int16 audio."})
