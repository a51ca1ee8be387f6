#!/usr/bin/env python
"""A speech-to-speech voice assistant: audio in -> VAD -> STT -> LLM -> TTS -> audio out.

    python s2s_pipeline.py                 # socket server for listen_and_play.py (ports 12345/12346)
    python s2s_pipeline.py --mode local    # this machine's microphone and speakers
    python s2s_pipeline.py config.json     # the same flags from a JSON file
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from arguments_classes.parsing import PipelineConfig, parse_arguments
from utils.blas_threads import blas_on_one_thread
from utils.errors import ConfigError
from utils.logging_setup import setup_logging
from utils.metrics import TurnMetrics
from utils.pipeline.messages import conversation_of
from utils.pipeline.queues import Queues
from utils.pipeline.thread_manager import ThreadManager

logger = logging.getLogger("s2s_pipeline")


def build_pipeline(config: PipelineConfig, q: Queues, metrics: TurnMetrics, models: dict | None = None) -> ThreadManager:
    """Load every stage (models warm up here, off the critical path) and wire the queues.
    `models` may hold ready model objects by stage name ("vad", "stt", "llm", "tts"), for tests."""
    from VAD.vad_handler import VADHandler

    models = models or {}
    def relisten(item) -> None:  # a dropped turn must not leave its conversation deaf
        metrics.turn_dropped(item)
        turn = getattr(item, "turn", None)
        if turn is not None:
            turn.conversation.turn_dropped(turn)
        elif (conversation := conversation_of(item)) is not None:
            conversation.should_listen.set()

    started = time.monotonic()

    def stage(name, handler_class, queue_in, queue_out, **kwargs):
        t = time.monotonic()
        handler = handler_class(q.stop_event, queue_in, queue_out, setup_kwargs=kwargs, on_turn_dropped=relisten)
        logger.info("%s ready in %.1f s", handler.name, time.monotonic() - t)
        return handler

    connections = _connections(config, q, metrics)  # first: a busy port or a missing device fails fast
    (stt_backend, stt_config), (llm_backend, llm_config), (tts_backend, tts_config) = config.stt, config.llm, config.tts
    handlers = [
        stage("vad", VADHandler, q.audio_frames, q.speech_segments, config=config.vad, model=models.get("vad")),
        stage("stt", stt_backend.load_handler(), q.speech_segments, q.transcripts, config=stt_config, model=models.get("stt")),
        stage("llm", llm_backend.load_handler(), q.transcripts, q.sentences, config=llm_config, model=models.get("llm")),
        stage("tts", tts_backend.load_handler(), q.sentences, q.audio_out, config=tts_config,
              model=models.get("tts")),
    ]
    for connection in connections:  # the Realtime endpoint offers function tools when the language model takes them
        if hasattr(connection, "tools_supported"):
            connection.tools_supported = handlers[2].supports_tools
    handlers = connections + handlers
    blas_on_one_thread()  # once every stage has loaded its libraries: see utils/blas_threads.py
    logger.info("pipeline loaded in %.1f s", time.monotonic() - started)
    return ThreadManager(handlers, q.stop_event)


def _connections(config: PipelineConfig, q: Queues, metrics: TurnMetrics) -> list:
    if config.module.mode == "local":
        from connections.local_audio_streamer import LocalAudioStreamer

        return [LocalAudioStreamer(q.stop_event, q.audio_frames, q.audio_out, metrics, config.local,
                                   echo_canceller=_echo_canceller(config.vad))]
    from connections.socket_server import ReplyDispatcher, SessionRegistry, SocketServer

    r = config.receiver
    registry = SessionRegistry(r.max_sessions, r.max_sessions_per_host)  # shared: one limit for both kinds of client
    barge_in = config.vad.barge_in and not config.vad.half_duplex  # for clients that cancel their echo (S2S2)
    servers: list = [SocketServer(q.stop_event, q.audio_frames, registry, metrics, r, config.sender, barge_in)]
    if config.realtime.realtime_port:
        from connections.realtime.server import RealtimeEndpoint

        try:
            servers.append(RealtimeEndpoint(q.stop_event, q, registry, metrics, config.realtime,
                                            model_name=f"s2s-{config.module.llm}", barge_in=barge_in))
        except ConfigError:
            servers[0].close()
            raise
    return servers + [ReplyDispatcher(q.stop_event, q.audio_out, None, setup_kwargs={"registry": registry})]


def _echo_canceller(vad):
    """Local mode's echo canceller when barge-in is wanted; None (half-duplex) otherwise or when it is missing."""
    if not vad.barge_in or vad.half_duplex:
        return None
    from utils.echo_cancel import load_echo_canceller

    try:
        return load_echo_canceller(vad.echo_canceller)
    except ValueError as e:
        raise ConfigError(f"--echo_canceller: {e}") from None


def _health_server(config: PipelineConfig, metrics: TurnMetrics):
    """/healthz and /metrics on --metrics_port (utils/health_server.py), or None when it is not given."""
    if config.module.metrics_port is None:
        return None
    from utils.health_server import serve

    return serve(config.module.metrics_port, config.receiver.recv_host, metrics)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    health = None
    try:
        config = parse_arguments(argv)
        setup_logging(config.module.log_level)
        if config.local.list_devices:
            from connections.local_audio_streamer import list_devices

            print(list_devices())
            return 0
        q = Queues()
        metrics = TurnMetrics(config.module.metrics_file)
        health = _health_server(config, metrics)  # up first: it says 503 while the models load
        manager = build_pipeline(config, q, metrics)
    except (ConfigError, KeyboardInterrupt) as e:
        if health is not None:
            health.close()
        if isinstance(e, KeyboardInterrupt):
            return 0
        print(f"error: {e}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        logger.info("%s received; shutting down", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    manager.start()
    if health is not None:
        health.watch(manager)
    logger.info("ready: talk to me")
    while not stop_requested.is_set() and manager.any_alive():
        stop_requested.wait(0.2)
    if health is not None:
        health.stopping()
    manager.stop()
    if health is not None:
        health.close()
    summary = metrics.summary()
    if summary:
        logger.info(summary)
    return 0 if stop_requested.is_set() else 1  # else a stage stopped the server (logged where it happened)


if __name__ == "__main__":
    sys.exit(main())
