"""Tiny random causal LMs for fast tests (seconds, not minutes).

`tiny_model("gpt2")` has learned absolute positions, `tiny_model("qwen2")` / `("llama")` rotary
ones; all share a character-level tokenizer with `TINY_VOCAB` tokens. Weights are random but
seeded, with a large init scale so that logits are well separated (greedy ties are rare).
`tiny_pair` makes a ModelPair whose draft is the target plus noise, so that
acceptance is neither 0 nor 1; `tiny_int8_pair` the same pair in int8. `save_tiny_pair` writes a draft/target pair to folders so that tests exercise `load_pair`'s
real `from_pretrained` path (also with padded embeddings or a draft tokenizer of other ids).

What it does not do: produce sensible text. These models only exercise the mechanics.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from .pair import ModelPair
from .precision import make_int8

TINY_ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?"
EOS_TOKEN = "<eos>"
TINY_VOCAB = len(TINY_ALPHABET) + 1  # 32
ARCHITECTURES = ("gpt2", "qwen2", "llama")


def tiny_tokenizer(vocab_size: int = TINY_VOCAB, alphabet: str = TINY_ALPHABET) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: id 0 is <eos>, then the first `vocab_size - 1` characters of `alphabet`."""
    chars = alphabet[: vocab_size - 1]
    vocab = {EOS_TOKEN: 0} | {c: i + 1 for i, c in enumerate(chars)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=EOS_TOKEN))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, unk_token=EOS_TOKEN)


def tiny_config(arch: str, vocab_size: int, layers: int, hidden: int, max_positions: int, attn: str):
    common = dict(vocab_size=vocab_size, eos_token_id=0, bos_token_id=0, pad_token_id=0)
    if arch == "gpt2":
        return GPT2Config(n_layer=layers, n_embd=hidden, n_head=2, n_positions=max_positions,
                          initializer_range=0.4, attn_implementation=attn, **common)
    config_class = {"qwen2": Qwen2Config, "llama": LlamaConfig}[arch]
    return config_class(num_hidden_layers=layers, hidden_size=hidden, intermediate_size=2 * hidden,
                        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_positions,
                        initializer_range=0.4, tie_word_embeddings=False, attn_implementation=attn, **common)


def tiny_model(
    arch: str = "gpt2",
    seed: int = 0,
    vocab_size: int = TINY_VOCAB,
    layers: int = 2,
    hidden: int = 32,
    max_positions: int = 128,
    attn: str = "sdpa",
    dtype: torch.dtype = torch.float32,
) -> PreTrainedModel:
    """A small random causal LM of architecture `arch` ("gpt2", "qwen2" or "llama"), seeded."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if attn not in ("sdpa", "eager"):
        raise ValueError(f"attn must be 'sdpa' or 'eager', got {attn!r}")
    torch.manual_seed(seed)
    config = tiny_config(arch, vocab_size, layers, hidden, max_positions, attn)
    model_class = {"gpt2": GPT2LMHeadModel, "qwen2": Qwen2ForCausalLM, "llama": LlamaForCausalLM}[arch]
    return model_class(config).to(dtype).eval()


def perturbed_copy(model: PreTrainedModel, noise: float, seed: int = 0) -> PreTrainedModel:
    """A copy of `model` whose weights get Gaussian noise of `noise` x each tensor's std: a draft that agrees often."""
    draft = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in draft.parameters():
            scale = weight.float().std() if weight.numel() > 1 else weight.abs().float()
            weight.add_((noise * scale * torch.randn(weight.shape, generator=generator)).to(weight.dtype))
    return draft


def tiny_pair(arch: str = "gpt2", seed: int = 0, noise: float = 0.05, vocab_size: int = TINY_VOCAB,
              attn: str = "sdpa", dtype: torch.dtype = torch.float32, **model_kwargs) -> ModelPair:
    """A tiny target and a draft that is the target plus noise (larger `noise`, lower acceptance), on CPU."""
    target = tiny_model(arch, seed=seed, vocab_size=vocab_size, attn=attn, dtype=dtype, **model_kwargs)
    draft = perturbed_copy(target, noise, seed=seed + 1)
    return ModelPair(draft, target, tiny_tokenizer(vocab_size), dtype, torch.device("cpu"))


def tiny_int8_pair(arch: str = "gpt2", **kwargs) -> ModelPair:
    """`tiny_pair(arch, **kwargs)` in int8, as `load_pair(dtype="int8")` makes a loaded pair (`precision.make_int8`)."""
    pair = tiny_pair(arch, **kwargs)
    return ModelPair(make_int8(pair.draft), make_int8(pair.target), pair.tokenizer, torch.int8, pair.device)


def save_tiny_pair(folder: str | Path, arch: str = "gpt2", draft_vocab: int = TINY_VOCAB,
                   target_vocab: int = TINY_VOCAB, draft_rows: int | None = None, target_rows: int | None = None,
                   draft_alphabet: str = TINY_ALPHABET) -> tuple[Path, Path]:
    """Save a tiny draft (1 layer) and target (2 layers), each with its tokenizer; returns both folders.

    `*_vocab` sizes the tokenizers, `*_rows` the embeddings (default: the vocabulary size; more
    rows = padding, as in Qwen2.5), `draft_alphabet` the draft tokenizer's characters (another
    order: same size, other ids).
    """
    folder = Path(folder)
    paths = []
    for name, seed, layers, vocab, rows, alphabet in (
            ("draft", 1, 1, draft_vocab, draft_rows, draft_alphabet),
            ("target", 2, 2, target_vocab, target_rows, TINY_ALPHABET)):
        path = folder / name
        tiny_model(arch, seed=seed, layers=layers, vocab_size=rows or vocab).save_pretrained(path)
        tiny_tokenizer(vocab, alphabet).save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]
