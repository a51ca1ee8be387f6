"""The pipeline's core: what flows (messages.py), on which queue (queues.py), and how every stage runs
(base_handler.py: read an item, process it, put what it yields on the next queue; thread_manager.py: one thread
per stage). registry.py maps each backend name to its settings and a lazily imported handler.

    audio in --AudioFrame--> VAD --SpeechSegment--> STT --Transcript--> LLM --Sentence--> TTS --AudioOut--> audio out
"""
