"""A real LlamaForCausalLM, tiny and offline, whose weights are set so that greedy decoding says a script.

Attention and MLP outputs are zeroed, so the last hidden state is the current token's embedding; the
embeddings are one-hot and lm_head is a permutation: the next token is a fixed function of the current one.
Every word of the vocabulary that is not in the script leads to its first word, so whatever the chat
template ends with, the reply is the script, then the end-of-sequence token.
"""
from __future__ import annotations

from pathlib import Path

SCRIPT = ["▁Hello", "▁world", ".", "▁How", "▁are", "▁you", "?"]
REPLY = "Hello world. How are you?"
SENTENCES = ["Hello world.", "How are you?"]
SPECIAL = ["<unk>", "<s>", "</s>"]
OTHER_WORDS = ["▁user", "▁assistant", "▁system", "▁Hi", "▁Answer", "▁in", "▁French."]

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }} {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant{% endif %}"
)


def build(path: Path) -> Path:
    """Saves tokenizer and model to `path` (a directory) and returns it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL + SCRIPT + OTHER_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    size, hidden = len(vocab), 32  # hidden >= vocabulary, and even (RoPE)
    config = LlamaConfig(
        vocab_size=size, hidden_size=hidden, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1,
        num_key_value_heads=1, head_dim=hidden, max_position_embeddings=256, tie_word_embeddings=False,
        bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["</s>"],
    )
    model = LlamaForCausalLM(config)
    following = {token: vocab[SCRIPT[0]] for token in vocab}
    for current, nxt in zip(SCRIPT, SCRIPT[1:] + ["</s>"]):
        following[current] = vocab[nxt]
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(size, hidden))
        layer = model.model.layers[0]
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(size, hidden)
        for token, i in vocab.items():
            head[following[token], i] = 10.0
        model.lm_head.weight.copy_(head)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
