"""The parler, melo and facebook-mms TTS backends, on tiny random models built here (no model hub).

Parler runs in .venv-parler (parler-tts needs transformers 4.46.1): tests/parler_check.py drives the real
handler there and reports what it saw; the assertions are made here."""
import importlib.util
import json
import logging
import math
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from arguments_classes.parsing import parse_arguments
from TTS import BACKENDS
from TTS.base import pcm_blocks, stream_blocks
from TTS.voices import MELO_VOICES, MMS_LANGUAGES, PARLER_SPEAKERS, parler_description, pick
from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError
from utils.pipeline.messages import Conversation, Sentence, Turn

ROOT = Path(__file__).resolve().parent.parent
PARLER_PYTHON = Path(os.environ.get("PARLER_PYTHON", ROOT / ".venv-parler" / "bin" / "python"))


def make_handler(backend_name, flags, **setup):
    backend, config = parse_arguments(["--tts", backend_name, *flags]).tts
    handler = backend.load_handler()(threading.Event(), queue.Queue(), queue.Queue(),
                                     setup_kwargs={"config": config, **setup})
    return handler


def new_turn():
    """A turn as the VAD makes it: its conversation stops listening until the reply is done."""
    turn = Turn(Conversation(), speech_end=0.0)
    turn.conversation.should_listen.clear()
    return turn


def samples_of(outs):
    return np.concatenate([np.frombuffer(o.pcm, dtype="<i2") for o in outs if o.pcm])


# --- shared pieces: blocks, voices ---------------------------------------------------------------------------

def test_streamed_pieces_become_the_same_blocks_as_the_whole_utterance():
    rate, n = 44100, 44100
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / rate)).astype(np.float32)
    cuts = [0, 1000, 1001, 5000, 20000, n]
    pieces = [tone[a:b] for a, b in zip(cuts, cuts[1:])]
    streamed = list(stream_blocks(iter(pieces), rate, 512))
    whole = pcm_blocks(tone, rate, 512)
    assert all(len(b) == 2 * 512 for b in streamed)
    assert abs(len(streamed) - len(whole)) <= 1
    a = np.frombuffer(b"".join(streamed), dtype="<i2").astype(float)
    b = np.frombuffer(b"".join(whole), dtype="<i2").astype(float)
    m = min(len(a), len(b)) - 512
    assert np.corrcoef(a[:m], b[:m])[0, 1] > 0.99  # resampled as one stream: no seams where pieces meet
    assert len(a) == pytest.approx(n * SAMPLE_RATE / rate, abs=512)


def test_language_picks_the_voice_and_unknown_languages_fall_back(caplog):
    assert pick(MMS_LANGUAGES, "fr", "en", "mms") == "fra"
    assert pick(MMS_LANGUAGES, "en-US", "fr", "mms") == "eng"
    assert pick(MMS_LANGUAGES, None, "de", "mms") == "deu"
    assert pick(MELO_VOICES, "ja", "en", "melo") == ("JP", "JP")
    assert pick(PARLER_SPEAKERS, "PT_br", "en", "parler") == "Sophia"
    with caplog.at_level(logging.WARNING):
        assert pick(PARLER_SPEAKERS, "xx", "fr", "parler") == "Christine"
    assert "no voice for language 'xx'" in caplog.text
    with pytest.raises(ConfigError, match="--tts_language 'xx'"):
        pick(MELO_VOICES, None, "xx", "melo")


def test_parler_description_names_the_speaker():
    assert parler_description("Jenny speaks fast.", "Jason") == "Jason speaks fast."
    assert parler_description("Nicole speaks fast.", "Mark") == "Mark speaks fast."
    assert parler_description("A calm voice.", "Alex") == "Alex A calm voice."


def test_one_tts_flag_set_serves_every_backend():
    for name in ("hibari", "parler", "melo", "facebook-mms"):
        config = parse_arguments(["--tts", name, "--tts_model_name", "m", "--tts_device", "cuda", "--tts_blocksize", "256"]).tts[1]
        assert (config.model_name, config.device, config.blocksize) == ("m", "cuda", 256)
    parler = parse_arguments(["--tts", "parler", "--tts_description", "Bob speaks.", "--tts_gen_max_new_tokens", "9"]).tts[1]
    assert parler.description == "Bob speaks." and parler.gen_kwargs == {"min_new_tokens": 64, "max_new_tokens": 9}
    assert parse_arguments(["--tts", "parler", "--description", "Ann speaks."]).tts[1].description == "Ann speaks."


# --- facebook-mms: transformers VITS ---------------------------------------------------------------------

def build_vits(folder: Path, sampling_rate: int) -> None:
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder.mkdir(parents=True)
    vocab = {c: i for i, c in enumerate("_abcdefghijklmnopqrstuvwxyz '-.,!?")}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    VitsTokenizer(str(folder / "vocab.json"), pad_token="_", unk_token="_", add_blank=True, normalize=True,
                  phonemize=False).save_pretrained(folder)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32, flow_size=16,
        spectrogram_bins=17, upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], duration_predictor_filter_channels=16,
        prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1,
        depth_separable_num_layers=1, duration_predictor_num_flows=1, sampling_rate=sampling_rate,
        use_stochastic_duration_prediction=False,  # durations then depend on the text and speaking rate only
    )
    model = VitsModel(config)
    with torch.no_grad():  # every token lasts exp(log 8) = 8 frames at speaking rate 1: lengths follow the rate exactly
        model.duration_predictor.proj.weight.zero_()
        model.duration_predictor.proj.bias.fill_(math.log(8))
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def mms_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("mms")
    build_vits(root / "mms-eng", 16000)
    build_vits(root / "mms-fra", 24000)
    return str(root / "mms-{lang}")


def record_runs(model, runs, code):
    model.register_forward_hook(lambda _m, _inputs, output: runs.append((code, output.waveform.shape[-1])))


def test_mms_speaks_each_sentence_as_blocks_and_listens_after_the_last(mms_models):
    handler = make_handler("facebook-mms", ["--tts_model_name", mms_models])
    runs = []
    record_runs(handler.voices["eng"][0], runs, "eng")
    turn = new_turn()
    first = list(handler.process(Sentence("Hello there, how are you?", "en", turn)))
    assert first and all(len(o.pcm) == 2 * 512 and not o.last for o in first)
    assert len(first) == -(-runs[0][1] // 512)  # a 16 kHz voice: every sample sent, the last block padded
    assert np.abs(samples_of(first)).max() > 0
    assert not turn.conversation.should_listen.is_set()
    end = list(handler.process(Sentence("", "en", turn, last=True)))
    assert [(o.pcm, o.last) for o in end] == [(b"", True)]
    assert turn.conversation.should_listen.is_set()
    assert "first_audio" in turn.marks


def test_mms_picks_the_model_by_language_loads_it_once_and_resamples(mms_models, caplog):
    handler = make_handler("facebook-mms", ["--tts_model_name", mms_models, "--tts_blocksize", "256"])
    assert list(handler.voices) == ["eng"]  # only the default voice loads up front
    runs = []
    record_runs(handler.voices["eng"][0], runs, "eng")
    outs = list(handler.process(Sentence("Bonjour a tous.", "fr", new_turn())))
    french = handler.voices["fra"][0]
    assert french.config.sampling_rate == 24000
    record_runs(french, runs, "fra")
    outs = list(handler.process(Sentence("Merci beaucoup.", "fr-FR", new_turn())))
    assert handler.voices["fra"][0] is french  # cached, not reloaded
    assert [code for code, _ in runs] == ["fra"]
    assert len(outs) == pytest.approx(runs[0][1] * 16000 / 24000 / 256, abs=1)  # 24 kHz resampled to 16 kHz
    list(handler.process(Sentence("Hello.", "en", new_turn())))
    assert [code for code, _ in runs] == ["fra", "eng"]
    with caplog.at_level(logging.WARNING):
        list(handler.process(Sentence("Hallo.", "de", new_turn())))  # no mms-deu here: the default voice speaks
    assert handler.voices["deu"] is handler.voices["eng"] and runs[-1][0] == "eng"
    assert "mms-deu" in caplog.text


def test_mms_generation_options_reach_the_model(mms_models):
    slow = make_handler("facebook-mms", ["--tts_model_name", mms_models, "--tts_gen_speaking_rate", "0.5"])
    fast = make_handler("facebook-mms", ["--tts_model_name", mms_models, "--tts_gen_speaking_rate", "2.0",
                                            "--tts_gen_noise_scale", "0.1"])
    assert slow.voices["eng"][0].speaking_rate == 0.5 and fast.voices["eng"][0].speaking_rate == 2.0
    assert fast.voices["eng"][0].noise_scale == 0.1
    assert slow.voices["eng"][0].noise_scale == pytest.approx(0.667)  # not given: the model's own value
    text = "a sentence long enough to hear the rate"
    n_slow = len(list(slow.speak(Sentence(text, "en", new_turn()))))
    n_fast = len(list(fast.speak(Sentence(text, "en", new_turn()))))
    assert n_slow == pytest.approx(4 * n_fast, abs=2)  # 16 frames a token at rate 0.5, 4 at rate 2.0


def test_mms_missing_model_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        make_handler("facebook-mms", ["--tts_model_name", str(tmp_path / "nothing-{lang}")])
    assert "nothing-eng" in str(e.value) and "\n" not in str(e.value)


# --- melo: MeloTTS cannot install or download here; its handler runs on a fake Melo model ---------------

class FakeMelo:
    """MeloTTS's TTS interface: hps.data.spk2id / sampling_rate and tts_to_file(text, speaker_id, ...)."""

    def __init__(self, language, calls):
        speakers = {"EN": {"EN-US": 0, "EN-BR": 1, "EN_INDIA": 2}}.get(language, {language: 0})
        self.hps = SimpleNamespace(data=SimpleNamespace(spk2id=speakers, sampling_rate=44100))
        self.language, self.calls = language, calls

    def tts_to_file(self, text, speaker_id, output_path=None, quiet=False, **kwargs):
        self.calls.append((self.language, text, speaker_id, kwargs))
        n = int(0.3 * 44100)
        return (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)


def test_melo_without_the_package_says_how_to_install_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "melo", None)  # as on this machine: MeloTTS is not installable from PyPI
    handler_class = BACKENDS["melo"].load_handler()  # the handler module itself imports without MeloTTS
    with pytest.raises(ConfigError) as e:
        make_handler("melo", [])
    message = str(e.value)
    assert "MeloTTS is not installed" in message and "unidic" in message and "\n" not in message
    assert handler_class.__name__ == "MeloTTSHandler"


def test_melo_speaks_with_the_speaker_of_the_sentence_language():
    loaded, calls = [], []

    def load(language):
        loaded.append(language)
        return FakeMelo(language, calls)

    handler = make_handler("melo", ["--tts_gen_speed", "1.5"], model=load)
    assert loaded == ["EN"]
    calls.clear()
    turn = new_turn()
    outs = list(handler.process(Sentence("Bonjour.", "fr", turn)))
    outs += list(handler.process(Sentence("Hello.", "en", turn)))
    outs += list(handler.process(Sentence("Encore.", "fr", turn, last=True)))
    assert loaded == ["EN", "FR"]  # French loaded once, on first use
    assert [(lang, text, speaker) for lang, text, speaker, _ in calls] == [
        ("FR", "Bonjour.", 0), ("EN", "Hello.", 0), ("FR", "Encore.", 0)]  # EN-US is id 0 in the fake
    assert calls[0][3] == {"speed": 1.5, "sdp_ratio": 0.2, "noise_scale_w": 0.8}
    blocks_per_sentence = -(-round(0.3 * 44100 * 16000 / 44100) // 512)
    assert len(outs) == 3 * blocks_per_sentence + 1
    assert all(len(o.pcm) == 1024 for o in outs[:-1]) and outs[-1].pcm == b"" and outs[-1].last
    assert turn.conversation.should_listen.is_set()


# --- parler: the real handler and parler-tts in .venv-parler -----------------------------------------------

def test_parler_in_the_main_install_fails_with_one_line_saying_what_to_do():
    if importlib.util.find_spec("parler_tts") is not None and importlib.util.find_spec("transformers.modeling_attn_mask_utils"):
        assert BACKENDS["parler"].load_handler().__name__ == "ParlerTTSHandler"  # running inside the parler venv
        return
    with pytest.raises(ConfigError) as e:
        BACKENDS["parler"].load_handler()
    assert "install_parler.sh" in str(e.value) and "\n" not in str(e.value)


@pytest.fixture(scope="module")
def parler_report(tmp_path_factory):
    if not PARLER_PYTHON.exists():
        pytest.fail(f"{PARLER_PYTHON} is missing: run bash scripts/install_parler.sh (the parler backend's own venv)")
    tmp = tmp_path_factory.mktemp("parler")
    done = subprocess.run([str(PARLER_PYTHON), "-W", "ignore", "-m", "tests.parler_check", str(tmp)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_parler_streams_16khz_blocks_while_generating(parler_report):
    r = parler_report
    assert r["sample_rate"] == 44100  # read from the model's config (the DAC codec)
    assert r["play_steps"] == 8  # 0.1 s at 86 frames/s
    assert r["gate_released_by_reader"] == [True]  # a block reached the reader before generation went on
    hello = [o for o in r["outs"] if o["sentence"] == "Hello there."]
    samples = r["calls"][0]["samples"]  # what generate() made at 44.1 kHz for that sentence
    assert all(o["bytes"] == 2 * 256 and not o["last"] for o in hello)
    assert len(hello) == pytest.approx(samples * 16000 / 44100 / 256, abs=1)
    assert all(c["streamed"] for c in r["calls"])


def test_parler_last_sentence_ends_the_reply_and_listens_again(parler_report):
    outs = parler_report["outs"]
    assert [o["last"] for o in outs].count(True) == 1 and outs[-1]["last"] and outs[-1]["bytes"] == 0
    assert outs[-2]["sentence"] == "Good bye!" and outs[-2]["bytes"] == 512  # its audio came before the end
    assert not any(o["listening"] for o in outs)  # not listening while speaking...
    assert parler_report["listening_after"]  # ...but after the last sentence


def test_parler_speaker_follows_the_sentence_language(parler_report):
    calls, expected = parler_report["calls"], parler_report["expected_input_ids"]
    assert calls[0]["input_ids"] == expected["fr"]  # "Christine speaks clearly."
    assert calls[1]["input_ids"] == expected["de"]  # "Nicole speaks clearly." (language "de-DE")


def test_parler_generation_flags_reach_generate(parler_report):
    for call in parler_report["calls"]:
        assert (call["min_new_tokens"], call["max_new_tokens"]) == (24, 24)


def test_parler_prompts_pad_to_powers_of_two_for_compiled_graphs(parler_report):
    assert parler_report["pad_lengths"] == {"1": 4, "3": 4, "4": 4, "5": 8, "9": 16, "17": 32}
    assert parler_report["padded_prompt"] == [1, 16]


def test_parler_stops_generating_when_the_listener_leaves_and_reports_failures(parler_report):
    full = parler_report["calls"][0]["samples"]
    assert parler_report["cancelled_samples"] < full / 2
    assert parler_report["failure"] == "generation broke"
