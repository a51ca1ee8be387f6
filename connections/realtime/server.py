"""The Realtime endpoint's server: a websockets server on its own event loop thread, beside the socket server, on
the same pipeline, session limits and metrics. GET / and the page's files are plain HTTP on the same port.

Security: the port is bound to localhost unless --realtime_host says otherwise, and then a key is required
(arguments_classes/parsing.py); a browser's Origin must be the page's own; messages are capped in size and rate.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import mimetypes
import threading
from pathlib import Path
from urllib.parse import urlsplit

from connections.listening_socket import bind
from connections.realtime.session import RealtimeSession
from utils.errors import ConfigError

logger = logging.getLogger(__name__)

PATH = "/v1/realtime"
PAGE_DIR = Path(__file__).resolve().parent / "page"
MAX_MESSAGE_BYTES = 1 << 20  # ~20 s of 24 kHz audio in one append: more is not a voice client
KEY_PROTOCOL = "openai-insecure-api-key."  # how a browser, which cannot set headers, sends the key
SUBPROTOCOL = "realtime"
POLL_S = 0.2
CLOSE_POLICY = 1008  # the WebSocket close code for "policy violation": over the session limit, flooding


class RealtimeEndpoint:
    """A pipeline thread (ThreadManager runs `run`). `queues`: the pipeline's, where sessions put their audio
    (server VAD), committed turns (turn_detection null) and text questions."""

    name = "RealtimeEndpoint"

    def __init__(
        self,
        stop_event: threading.Event,
        queues,
        registry,
        metrics,
        config,
        model_name: str,
        tools_supported: bool = False,
        barge_in: bool = True,
    ) -> None:
        self.stop_event = stop_event
        self.audio_frames = queues.audio_frames
        self.speech_segments = queues.speech_segments
        self.transcripts = queues.transcripts
        self.registry = registry
        self.metrics = metrics
        self.api_key = config.realtime_api_key
        self.model_name = model_name
        self.tools_supported = tools_supported
        self.barge_in = barge_in  # off with --half_duplex / --no_barge_in: sessions never listen during a reply
        self.host, self.port = config.realtime_host, config.realtime_port
        try:
            import websockets.asyncio.server  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the Realtime endpoint needs websockets >= 14: pip install 'websockets>=14', or turn it "
                "off with --realtime_port 0"
            ) from None
        self.sock = bind(self.host, self.port)  # a busy port fails at start-up
        self.sessions: set[RealtimeSession] = set()
        logging.getLogger("websockets.realtime").setLevel(logging.WARNING)  # a line per connection: ours says more
        logger.info(
            "Realtime endpoint on ws://%s:%d%s, its web page at http://%s:%d/%s",
            self.host,
            self.port,
            PATH,
            self.host,
            self.port,
            " (a key is required)" if self.api_key else "",
        )

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except ConfigError as e:
            logger.error("%s; stopping", e)
            self.stop_event.set()
        finally:
            self.sock.close()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        async with serve(
            self._session,
            sock=self.sock,
            process_request=self._check_request,
            select_subprotocol=self._subprotocol,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=64,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            server_header=None,
            logger=logging.getLogger("websockets.realtime"),
        ):
            while not self.stop_event.is_set():
                await asyncio.sleep(POLL_S)
            for session in list(self.sessions):
                session.close("server shutting down")
            await asyncio.sleep(0.1)  # let the close frames go out

    # --- the opening handshake, and the page ---

    def _check_request(self, connection, request):
        """None lets a WebSocket handshake on PATH go on; anything else gets its HTTP response here."""
        path = urlsplit(request.path).path
        if path != PATH:
            return self._page(connection, path)
        origin = request.headers.get("Origin")
        if origin is not None and not self._same_origin(origin, request.headers.get("Host", "")):
            logger.warning("realtime: refused a connection from origin %s (not this server's page)", origin)
            return connection.respond(403, "Origin not allowed: open the page this server serves.\n")
        if self.api_key and not self._has_key(request.headers):
            logger.warning("realtime: refused a connection from %s without the right key", _peer(connection))
            return connection.respond(401, "Missing or wrong key: send Authorization: Bearer <--realtime_api_key>.\n")
        return None

    @staticmethod
    def _same_origin(origin: str, host: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()

    def _has_key(self, headers) -> bool:
        offered = [headers.get("Authorization", "").removeprefix("Bearer ").strip()]
        for value in headers.get_all("Sec-WebSocket-Protocol"):
            offered += [p.strip()[len(KEY_PROTOCOL) :] for p in value.split(",") if p.strip().startswith(KEY_PROTOCOL)]
        return any(hmac.compare_digest(key.encode(), self.api_key.encode()) for key in offered if key)

    @staticmethod
    def _subprotocol(connection, offered):
        """The browser offers "realtime" (and the key as a subprotocol): it must get one of them back."""
        if SUBPROTOCOL in offered:
            return SUBPROTOCOL
        return None

    def _page(self, connection, path: str):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        name = path.lstrip("/") or "index.html"
        file = PAGE_DIR / name
        # only the folder's own files: no "..", no sub-folders
        if "/" in name or name.startswith(".") or not file.is_file():
            return connection.respond(404, "Not found.\n")
        body = file.read_bytes()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            kind = "text/javascript"
        headers = Headers(
            [
                ("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                (
                    "Content-Security-Policy",
                    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
                    "style-src 'self' 'unsafe-inline'",
                ),
                ("Permissions-Policy", "microphone=(self)"),
            ]
        )
        return Response(200, "OK", headers, body)

    # --- one session per connection ---

    async def _session(self, ws) -> None:
        peer = _peer(ws)
        session = RealtimeSession(ws, self, peer)
        refusal = self.registry.add(session)
        if refusal is not None:
            logger.warning("refusing realtime client %s: %s", peer, refusal)
            await ws.send(_error_json(f"refused: {refusal}", "session_limit_reached"))
            await ws.close(CLOSE_POLICY, f"refused: {refusal}"[:120])
            return
        self.sessions.add(session)
        logger.info("realtime client %s connected (conversation %d, %d active)", peer, session.id, len(self.registry))
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.registry.remove(session)


def _peer(connection) -> str:
    address = connection.remote_address or ("?", 0)
    return f"{address[0]}:{address[1]}"


def _error_json(message: str, code: str) -> str:
    import json

    from connections.realtime.protocol import new_id

    return json.dumps(
        {
            "type": "error",
            "event_id": new_id("event"),
            "error": {"type": "invalid_request_error", "code": code, "message": message},
        }
    )
