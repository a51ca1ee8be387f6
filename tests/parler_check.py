"""Runs the Parler handler on a tiny random Parler-TTS model and prints what it saw as JSON.

parler-tts needs transformers 4.46.1, so this runs in .venv-parler:
    .venv-parler/bin/python -m tests.parler_check TMP_DIR
tests/test_tts_backends.py starts it and makes the assertions; this script only observes.
"""
from __future__ import annotations

import json
import queue
import sys
import threading
from pathlib import Path

import torch
from parler_tts import DACConfig, ParlerTTSConfig, ParlerTTSDecoderConfig, ParlerTTSForConditionalGeneration
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5Config

import TTS.parler_handler as parler_handler
from arguments_classes.parsing import parse_arguments
from utils.pipeline.messages import Conversation, Sentence, Turn

CODEBOOK = 32  # codes 0..31; 32 is pad/eos, 33 bos
FRAMES = 24  # audio frames generated per sentence (86 frames = 1 s)


def build_tiny_model(folder: Path) -> PreTrainedTokenizerFast:
    """A character-level T5-style tokenizer and a Parler model of a few layers, random weights, saved to `folder`."""
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))  # no merges: one token per character
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    tokenizer.save_pretrained(folder)

    text = T5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, decoder_start_token_id=0)
    text._name_or_path = str(folder)  # where the handler finds the description tokenizer
    audio = DACConfig(num_codebooks=2, codebook_size=CODEBOOK, latent_dim=16, frame_rate=86, sampling_rate=44100)
    decoder = ParlerTTSDecoderConfig(
        vocab_size=CODEBOOK + 1, max_position_embeddings=256, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
        hidden_size=16, num_codebooks=2, pad_token_id=CODEBOOK, eos_token_id=CODEBOOK, bos_token_id=CODEBOOK + 1,
    )
    torch.manual_seed(0)
    model = ParlerTTSForConditionalGeneration(ParlerTTSConfig.from_sub_models_config(text, audio, decoder, vocab_size=len(vocab)))
    model.generation_config.decoder_start_token_id = CODEBOOK + 1
    model.generation_config.pad_token_id = CODEBOOK
    model.generation_config.eos_token_id = CODEBOOK
    model.generation_config.do_sample = True
    model.save_pretrained(folder)
    return tokenizer


class GatedStreamer(parler_handler.ParlerTTSStreamer):
    """After its first piece of audio, generation waits until the reader has received a block: proof that
    blocks leave while the sentence is still being generated (no clock involved)."""

    first_block = threading.Event()
    waited: list[bool] = []

    def on_finalized_audio(self, audio, stream_end=False):
        super().on_finalized_audio(audio, stream_end)
        if not stream_end and not self.waited:
            self.waited.append(self.first_block.wait(timeout=120))


def main(tmp: Path) -> dict:
    folder = tmp / "tiny-parler"
    tokenizer = build_tiny_model(folder)
    config = parse_arguments([
        "--tts", "parler", "--tts_model_name", str(folder), "--tts_blocksize", "256",
        "--tts_gen_min_new_tokens", str(FRAMES), "--tts_gen_max_new_tokens", str(FRAMES),
        "--play_steps_s", "0.1", "--use_default_speakers_list", "true",
        "--tts_description", "Jenny speaks clearly.",
    ]).tts[1]
    handler = parler_handler.ParlerTTSHandler(threading.Event(), queue.Queue(), queue.Queue(),
                                              setup_kwargs={"config": config})
    calls = []
    generate = handler.model.generate

    def spy(**kwargs):
        call = {
            "min_new_tokens": kwargs.get("min_new_tokens"), "max_new_tokens": kwargs.get("max_new_tokens"),
            "input_ids": kwargs["input_ids"][0].tolist(), "streamed": kwargs.get("streamer") is not None,
        }
        calls.append(call)
        out = generate(**kwargs)
        call["samples"] = int(out.shape[-1])
        call["events_at_end"] = list(events)
        return out

    handler.model.generate = spy
    parler_handler.ParlerTTSStreamer = GatedStreamer
    events: list[str] = []
    turn = Turn(Conversation(), speech_end=0.0)
    should_listen = turn.conversation.should_listen
    should_listen.clear()  # as the VAD leaves it
    outs = []
    for sentence in (Sentence("Hello there.", "fr", turn), Sentence("Good bye!", "de-DE", turn, last=True)):
        for out in handler.process(sentence):
            GatedStreamer.first_block.set()
            events.append("block")
            outs.append({"bytes": len(out.pcm), "last": out.last, "sentence": sentence.text,
                         "listening": should_listen.is_set()})
    report = {
        "sample_rate": handler.sample_rate, "play_steps": handler.play_steps, "outs": outs, "calls": calls,
        "gate_released_by_reader": GatedStreamer.waited, "listening_after": should_listen.is_set(),
        "expected_input_ids": {lang: tokenizer(text).input_ids for lang, text in
                               (("fr", "Christine speaks clearly."), ("de", "Nicole speaks clearly."))},
        "pad_lengths": {n: parler_handler.prompt_pad_length(n) for n in (1, 3, 4, 5, 9, 17)},
        "padded_prompt": list(handler.model_inputs("hi", "x", pad_to=16)["prompt_input_ids"].shape),
    }

    # A listener leaving mid-sentence: closing the stream after one block stops generation early.
    parler_handler.ParlerTTSStreamer = GatedStreamer.__bases__[0]
    stream = handler.speak(Sentence("Hello there.", "en", turn))
    next(stream)
    stream.close()
    report["cancelled_samples"] = calls[-1].get("samples")

    # A generation failure reaches the handler's thread instead of leaving the reader waiting forever.
    def broken(**kwargs):
        raise RuntimeError("generation broke")

    handler.model.generate = broken
    try:
        list(handler.speak(Sentence("Hello.", "en", turn)))
        report["failure"] = None
    except RuntimeError as e:
        report["failure"] = str(e)
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
