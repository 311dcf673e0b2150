"""Which number format the models run in, and loading a model in int8 (notebooks 00 and 06).

`dtype="auto"` picks, per device:
  - CUDA: bfloat16 where the GPU supports it, else float16;
  - MPS (Apple GPU): float16;
  - CPU: int8 (int8 weights, per-row int8 activations: `quantize.py`) wherever PyTorch has FBGEMM
    (every x86 CPU); else bfloat16 if the CPU has bf16 matrix instructions, else float32.
    Without bf16 hardware a bf16 forward over K+1 tokens costs about K+1 one-token forwards, so
    verification is not cheap and speculative decoding cannot pay. With it (AVX512_BF16) a bf16
    verification is nearly free, but a one-token forward still reads every weight, and bf16 weights
    are twice int8's bytes: on an AMD EPYC with AVX512_BF16 the target's one-token forward took 215 ms
    in bf16 against 57-77 ms in int8, and int8 plain decoding was 3.3x bf16 plain, faster than any bf16
    speculative method (README, "A second CPU"). Not measured: CPUs with AMX.
float32 stays the format for exactness proofs.

An int8 model is built from the bf16/fp32 checkpoint; its int8 weights are cached in
`cache_dir()/int8/` so that later loads skip quantizing (they still pack the weights for FBGEMM).

What it does not do: int8 on a GPU, detect bf16 support on non-Linux CPUs (macOS, Windows:
those get int8 or float32), or notice that a cached int8 file is older than its checkpoint
(delete `cache_dir()/int8/` after changing a model folder in place).
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import json
import platform
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from . import int8_layer, row_attention
from .offline_pair import cache_dir, write_file_atomically
from .quantize import Int8Linear, has_fbgemm, quantize_model

FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose_dtype(device: torch.device) -> tuple[str, str]:
    """The dtype `"auto"` means on `device`, and why, as (name, reason)."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bfloat16", "a CUDA GPU with bf16 support"
        return "float16", "a CUDA GPU without bf16 support"
    if device.type == "mps":
        return "float16", "an Apple GPU (MPS)"
    fast = sorted(set(FAST_BF16_FLAGS) & cpu_flags())
    if has_fbgemm():
        if fast:
            return "int8", (f"int8 weights are half of bf16's bytes, and a one-token forward reads them all: even with "
                            f"bf16 matrix instructions ({', '.join(fast)}) int8 decodes faster (README)")
        return "int8", ("this CPU has no bf16 matrix instructions (AVX512_BF16/AMX), so a bf16 forward over K+1 "
                        "tokens costs ~K+1 one-token forwards; int8 (FBGEMM) keeps verification cheap")
    if fast:
        return "bfloat16", f"no FBGEMM int8 kernels in this PyTorch; bf16 matrix instructions ({', '.join(fast)})"
    return "float32", "this CPU has no bf16 matrix instructions and PyTorch has no FBGEMM int8 kernels"


def int8_cache_file(name_or_dir: str | Path) -> Path:
    """Where the int8 weights of `name_or_dir` are cached: one safetensors file per checkpoint."""
    source = str(Path(name_or_dir).resolve()) if Path(name_or_dir).exists() else str(name_or_dir)
    tag = hashlib.sha256(source.encode()).hexdigest()[:12]
    return cache_dir() / "int8" / f"{Path(source).name}-{tag}.safetensors"


def return_freed_memory() -> None:
    """Give the heap memory freed while converting back to the OS (glibc `malloc_trim`; elsewhere nothing).

    Without it the plain int8 copies, freed once packed, stay in the process's resident memory (~1.6 GB
    for the 1.5B target)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not Linux with glibc
        pass


class SavedTensors(Mapping):
    """The tensors of a safetensors file as a read-only mapping, each read from disk when asked for.

    Plain reads, not a memory map: mapped pages that were read stay in the process's resident memory
    until the file is closed (~1.5 GB for the target), while a read tensor is freed once packed.
    Reads the dtypes the int8 cache holds (int8, float32, bfloat16); ValueError for others.
    """

    DTYPES = {"I8": torch.int8, "F32": torch.float32, "BF16": torch.bfloat16}

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as file:
            header_size = int.from_bytes(file.read(8), "little")
            self.header = json.loads(file.read(header_size))
        self.header.pop("__metadata__", None)
        self.data_start = 8 + header_size

    def __getitem__(self, name: str) -> torch.Tensor:
        entry = self.header[name]  # KeyError for a name the file does not hold
        if entry["dtype"] not in self.DTYPES:
            raise ValueError(f"{self.path.name}: {name} has dtype {entry['dtype']}, expected one of {list(self.DTYPES)}")
        begin, end = entry["data_offsets"]
        data = torch.empty(end - begin, dtype=torch.uint8)  # torch's allocator aligns to 64 bytes: FBGEMM packs
        with open(self.path, "rb") as file:                  # such a weight 10-25 % faster than a bytearray's
            file.seek(self.data_start + begin)
            file.readinto(data.numpy())
        return data.view(self.DTYPES[entry["dtype"]]).reshape(entry["shape"])

    def __contains__(self, name: object) -> bool:  # from the header (Mapping's default would read the tensor)
        return name in self.header

    def __iter__(self) -> Iterator[str]:
        return iter(self.header)

    def __len__(self) -> int:
        return len(self.header)


def save_int8_weights(model: PreTrainedModel, path: Path) -> None:
    """Write `int8_weights(model)` as a safetensors file, one tensor at a time (`safetensors.save_file` would hold
    every unpacked weight and a bytes copy of each at once: ~3 GB more at the peak for the 1.5B target)."""
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, Int8Linear)]
    entries, offset = {}, 0
    for name, layer in layers:  # the header first: names, dtypes, shapes and byte ranges, without unpacking
        for part, dtype, shape, n_bytes in (
                ("int8_weight", "I8", [layer.out_features, layer.in_features], layer.out_features * layer.in_features),
                ("scale", "F32", [layer.out_features], 4 * layer.out_features)):
            entries[f"{name}.{part}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n_bytes]}
            offset += n_bytes
    header = json.dumps(entries).encode()
    header += b" " * (-len(header) % 8)  # the format aligns the data to 8 bytes
    with open(path, "wb") as file:
        file.write(len(header).to_bytes(8, "little") + header)
        for _, layer in layers:  # then the data, in the header's order
            file.write(layer.int8_weight.contiguous().numpy().tobytes())
            file.write(layer.scale.contiguous().numpy().tobytes())


def write_int8_cache(name_or_dir: str | Path, path: Path) -> None:
    """Quantize `name_or_dir` from bf16 and write its int8 weights to `path` (atomically), then free the model.

    The weights are not packed for FBGEMM here (the load that follows packs them), and nothing of the model
    outlives the call: a first load's memory peak is one bf16 model plus its int8 weights, not both models'.
    """
    print(f"quantizing {Path(str(name_or_dir)).name} to int8 (once; cached in {path.parent})...", flush=True)
    start = time.perf_counter()
    model = quantize_model(AutoModelForCausalLM.from_pretrained(name_or_dir, dtype=torch.bfloat16), pack=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, lambda tmp: save_int8_weights(model, tmp))
    del model
    gc.collect()
    return_freed_memory()
    print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)


def int8_cache(name_or_dir: str | Path) -> Path:
    """The int8 cache file of `name_or_dir`, written first if it does not exist yet."""
    cached = int8_cache_file(name_or_dir)
    if not cached.is_file():
        write_int8_cache(name_or_dir, cached)
    return cached


def load_int8_model(name_or_dir: str | Path, pack: bool = True) -> PreTrainedModel:
    """`from_pretrained` in bf16, every linear layer swapped for int8 (quantized once, then read from the cache),
    attention row by row. CPU only. `pack=False`: see `make_int8`."""
    cached = int8_cache(name_or_dir)
    model = AutoModelForCausalLM.from_pretrained(name_or_dir, dtype=torch.bfloat16).eval()
    return make_int8(model, saved=SavedTensors(cached), pack=pack)  # each tensor read when its layer asks for it


def make_int8(model: PreTrainedModel, saved: Mapping[str, torch.Tensor] | None = None,
              pack: bool = True) -> PreTrainedModel:
    """What dtype "int8" runs, in place: every linear layer int8 (from `saved` weights when given, else
    quantized now), attention row by row, the one-function layer where it serves. Returns the model.
    `pack=False` leaves the int8 weights plain (each layer packs them for FBGEMM on first use): for a model
    converted further, as `int4_draft.to_int4` does, which would otherwise unpack them again."""
    quantize_model(model, saved=saved, pack=pack)
    return_freed_memory()
    model.set_attn_implementation(row_attention.NAME)  # rows independent: verify == one-token forwards
    int8_layer.install(model)  # the same arithmetic in fewer calls
    return model
