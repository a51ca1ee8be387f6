"""Tiny, randomly initialised models for the whisper-mlx and paraformer backends, built from each package's own
model classes and saved as their loaders expect (no model hub): real code, meaningless words."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

MULTILINGUAL_VOCAB = 51865  # Whisper's vocabulary sizes: English-only models have one token fewer
ENGLISH_VOCAB = 51864


def build_mlx_whisper(folder: Path, multilingual: bool = True) -> str:
    """config.json + weights.safetensors, as mlx_whisper.load_models.load_model reads them."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_whisper.whisper import ModelDimensions, Whisper

    dims = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
                n_vocab=MULTILINGUAL_VOCAB if multilingual else ENGLISH_VOCAB,
                n_text_ctx=64, n_text_state=16, n_text_head=2, n_text_layer=1)
    mx.random.seed(0)
    model = Whisper(ModelDimensions(**dims))
    folder.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(folder / "weights.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps({**dims, "model_type": "whisper"}))
    return str(folder)


PARAFORMER_TOKENS = ["<blank>", "<s>", "</s>", *"你好世界今天气怎么样", "<unk>"]


def build_paraformer(folder: Path) -> str:
    """config.yaml + model.pt + tokens.json, as funasr.AutoModel reads a local model directory."""
    import torch
    import yaml

    with contextlib.redirect_stdout(io.StringIO()):
        from funasr.frontends.wav_frontend import WavFrontend
        from funasr.models.paraformer.model import Paraformer

    layer = {"attention_heads": 2, "linear_units": 32, "num_blocks": 1, "dropout_rate": 0.0,
             "positional_dropout_rate": 0.0, "kernel_size": 11, "sanm_shfit": 0}
    config = {
        "model": "Paraformer",
        "model_conf": {"ctc_weight": 0.0, "predictor_weight": 1.0, "predictor_bias": 1, "sampling_ratio": 0.75},
        "encoder": "SANMEncoder",
        "encoder_conf": {**layer, "output_size": 16, "attention_dropout_rate": 0.0, "input_layer": "pe",
                         "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True,
                         "selfattention_layer_type": "sanm"},
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {**layer, "self_attention_dropout_rate": 0.0, "src_attention_dropout_rate": 0.0, "att_layer_num": 1},
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": 16, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontend",
        "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10,
                          "lfr_m": 7, "lfr_n": 6},
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }
    torch.manual_seed(0)
    model = Paraformer(**config["model_conf"], **{k: config[k] for k in (
        "encoder", "encoder_conf", "decoder", "decoder_conf", "predictor", "predictor_conf")},
        input_size=WavFrontend(**config["frontend_conf"]).output_size(), vocab_size=len(PARAFORMER_TOKENS))
    with torch.no_grad():  # the CIF predictor fires a token about every frame: random weights then say something
        model.predictor.cif_output.bias.fill_(4.0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    (folder / "tokens.json").write_text(json.dumps(PARAFORMER_TOKENS, ensure_ascii=False))
    torch.save(model.state_dict(), folder / "model.pt")
    return str(folder)
