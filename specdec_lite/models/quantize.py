"""int8 weights with per-row int8 activations on the CPU: a memory-bound forward whose rows stay independent.

On a CPU without bf16 matrix hardware (AVX512_BF16 or AMX), a bf16 forward over K+1 tokens costs
about K+1 one-token forwards: the kernel is compute-bound, so verifying K drafts is not cheap.
Integer kernels are fast everywhere (FBGEMM, the x86 int8 GEMM inside PyTorch), and int8 weights
are half the bytes of bf16, so a one-token forward gets faster and a (K+1)-token forward costs
little more than a one-token one.

`Int8Linear` replaces an `nn.Linear`:
  - weights: int8, one scale per output channel (symmetric), packed once for FBGEMM;
  - activations: each ROW (token) x_i is quantized with its own scale s_i = max|x_i| / 63, in the
    7-bit range FBGEMM's AVX2 kernels use without int16 saturation;
  - y_i = s_i * (int8 GEMM of x_i / s_i) + b, accumulated in int32, returned in float32.
Because s_i depends on row i alone and the integer accumulation is exact, a row's output is the
same whether it is computed alone or with other rows (tested bit for bit). PyTorch's own
`quantize_dynamic` uses ONE scale for all rows of a call, so there a verification forward over
K+1 tokens rounds each token differently from the one-token forward that plain decoding runs.

`FusedInt8Linear` computes several projections of the same input in one GEMM (q/k/v of an
attention layer, gate/up of an MLP): the first projection's call computes all of them, the
others return their slice of that result.

What it does not do: GPUs or Apple's MPS (FBGEMM is an x86/ARM CPU library; use bf16/fp16
there), static (calibrated) activation scales, int4, or quantizing the embedding table (the
input embedding is a lookup, not a matrix product: it stays in bf16, rows widened to float32). A head tied to the
input embedding (GPT-2) becomes an int8 matrix of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import torch
from torch import nn

ACTIVATION_LEVELS = 63  # |x_q| <= 63: 7-bit activations, as FBGEMM's dynamic path on x86 (reduce_range)
ZERO_POINT = 64  # x_q + 64 in [1, 127]: the unsigned 7-bit code FBGEMM's kernel reads


def has_fbgemm() -> bool:
    """Whether this PyTorch has FBGEMM, the x86 int8 kernels this module runs on."""
    return "fbgemm" in torch.backends.quantized.supported_engines


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel: weight [out, in] -> (int8 [out, in], scale [out] float32)."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127  # [out]
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def pack_weight(int8_weight: torch.Tensor):
    """The FBGEMM-packed form of an int8 weight [out, in], packed with scale 1 (the per-channel scales are applied
    by `int8_matmul`: packing per-channel scales costs FBGEMM one small read per channel, 2.4x the packing time).

    torch 2.13 warns that quantized tensor types are deprecated (in favour of torchao); the
    packing op still takes one, so that one warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*deprecated")
        quantized = torch._make_per_tensor_quantized_tensor(int8_weight, 1.0, 0)
    return torch.ops.quantized.linear_prepack(quantized, None)


LINEAR_KERNEL = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32.default  # bound once: ~5 us a call


def int8_matmul(x: torch.Tensor, packed, scale: torch.Tensor) -> torch.Tensor:
    """x [rows, in] float32 -> x W^T [rows, out] float32, W = int8 weight * `scale` [out], each row of x
    quantized with its own scale."""
    row_max = torch.linalg.vector_norm(x, float("inf"), dim=-1, keepdim=True)  # [rows, 1]: max |x_i|, one op
    row_scale = row_max.clamp_min_(1e-12).div_(ACTIVATION_LEVELS)  # [rows, 1]
    # the kernel quantizes its input with scale 1 and zero point 64: round(x / s_i) + 64, per element, and
    # returns the int32 sums of products as float32
    out = LINEAR_KERNEL(x / row_scale, 1.0, ZERO_POINT, packed)  # [rows, out]
    return out.mul_(row_scale).mul_(scale)  # [rows, out] * [rows, 1] * [out], in place: no new tensors


class Int8Linear(nn.Module):
    """A drop-in `nn.Linear` with int8 weights and per-row int8 activations (float32 in, float32 out)."""

    def __init__(self, int8_weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = int8_weight.shape
        self.register_buffer("scale", scale)  # [out]
        self.register_buffer("bias", None if bias is None else bias.detach().float())
        self._unpacked: torch.Tensor | None = int8_weight  # [out, in], until FBGEMM packs it
        self._packed = None  # FBGEMM's layout, made on first use or by `quantize_model`; the only copy afterwards

    @property
    def packed(self):
        """FBGEMM's packed weight; packing frees the plain int8 copy (one copy of the weights in memory, not two)."""
        if self._packed is None:
            self._packed, self._unpacked = pack_weight(self._unpacked), None
        return self._packed

    @property
    def int8_weight(self) -> torch.Tensor:
        """The int8 weight [out, in] (unpacked from FBGEMM's layout once packed: for saving and inspection)."""
        if self._unpacked is not None:
            return self._unpacked
        weight, _ = torch.ops.quantized.linear_unpack(self._packed)
        return weight.int_repr()

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """x [rows, in] float32 -> [rows, out]: the layer on a flat batch of rows, bias included."""
        y = int8_matmul(x, self.packed, self.scale)
        return y if self.bias is None else y.add_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out]
        return self.matmul(x.reshape(-1, self.in_features).float()).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class FusedInt8Linear(nn.Module):
    """One int8 GEMM for several projections of the same input; `parts()` gives one module per projection."""

    def __init__(self, fused: Int8Linear, sizes: list[int]):
        super().__init__()
        self.fused, self.sizes = fused, sizes
        self._input: torch.Tensor | None = None
        self._outputs: tuple[torch.Tensor, ...] = ()

    def output(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Projection `index` of `x`; computes all of them when `x` is not the input seen last."""
        if index == 0 or x is not self._input:
            self._input, self._outputs = x, self.fused(x).split(self.sizes, dim=-1)
        out = self._outputs[index]
        if index == len(self.sizes) - 1:
            self._input, self._outputs = None, ()  # drop the references once every part was read
        return out

    def parts(self) -> list[nn.Module]:
        return [FusedPart(self, index) for index in range(len(self.sizes))]


class FusedPart(nn.Module):
    """Projection `index` of a `FusedInt8Linear` (holds no weights of its own)."""

    def __init__(self, group: FusedInt8Linear, index: int):
        super().__init__()
        self.index = index
        self._group = [group]  # in a list, so the group is not registered twice as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._group[0].output(x, self.index)


FUSED_GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
Int8Weights = Mapping[str, torch.Tensor]  # "<module path>.int8_weight" / ".scale" -> tensor, as saved


def fused_bias(linears: list[nn.Linear]) -> torch.Tensor | None:
    """The biases of `linears` side by side (zeros for a linear without one); None if none has a bias."""
    if all(linear.bias is None for linear in linears):
        return None
    return torch.cat([linear.bias.detach().float() if linear.bias is not None else torch.zeros(linear.out_features)
                      for linear in linears])


def as_linear(module: nn.Module) -> nn.Linear | None:
    """`module` if it is an nn.Linear; GPT-2's Conv1D (weight stored [in, out]) as an nn.Linear; else None."""
    if type(module) is nn.Linear:
        return module
    if type(module).__name__ == "Conv1D":
        linear = nn.Linear(*module.weight.shape, device="meta")
        linear.weight = nn.Parameter(module.weight.detach().t(), requires_grad=False)
        linear.bias = nn.Parameter(module.bias.detach(), requires_grad=False)
        return linear
    return None


def int8_linear(name: str, linears: list[nn.Linear], saved: Int8Weights) -> Int8Linear:
    """One Int8Linear computing `linears` side by side; the int8 weight from `saved` when there, else quantized now."""
    if f"{name}.int8_weight" in saved:
        return Int8Linear(saved[f"{name}.int8_weight"], saved[f"{name}.scale"], fused_bias(linears))
    weight = torch.cat([linear.weight.detach() for linear in linears])  # [sum(out), in]
    return Int8Linear(*quantize_weight(weight), fused_bias(linears))


def replace_linears(module: nn.Module, prefix: str, saved: Int8Weights, fuse: bool) -> list[Int8Linear]:
    """Swap the linear children of one module (fused groups first) for their int8 versions, in place; returns them."""
    created = []
    for names in FUSED_GROUPS if fuse else ():
        linears = [as_linear(getattr(module, name, None)) for name in names]
        if all(linears):
            group_name = "fused_" + "_".join(name.split("_")[0] for name in names)
            group = FusedInt8Linear(int8_linear(f"{prefix}{group_name}.fused", linears, saved),
                                    [linear.out_features for linear in linears])
            module.add_module(group_name, group)
            for name, part in zip(names, group.parts()):
                setattr(module, name, part)
            created.append(group.fused)
    for name, child in list(module.named_children()):
        if (linear := as_linear(child)) is not None:
            created.append(int8_linear(prefix + name, [linear], saved))
            setattr(module, name, created[-1])
    return created


class LayerPacker:
    """Packs Int8Linear layers for FBGEMM on `workers` threads (packing is the slow part of a load), letting the
    caller run at most a few layers ahead, so that only a few unpacked weights are in memory at a time."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = ThreadPoolExecutor(workers)
        self.submitted: list[Future] = []
        self.running: set[Future] = set()

    def pack(self, layers: list[Int8Linear]) -> None:
        new = [self.pool.submit(lambda layer=layer: layer.packed) for layer in layers]
        self.submitted += new
        self.running |= set(new)
        while len(self.running) > 2 * self.workers:
            self.running = wait(self.running, return_when=FIRST_COMPLETED).not_done

    def __enter__(self) -> LayerPacker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.pool.shutdown(wait=True)
        for future in self.submitted:
            future.result()  # raises here what a packing thread raised


@torch.no_grad()
def quantize_model(model: nn.Module, saved: Int8Weights | None = None, fuse: bool = True,
                   pack: bool = True) -> nn.Module:
    """Swap every linear layer of `model` (lm_head included) for an `Int8Linear`, in place; returns `model`.

    `saved` holds int8 weights from `int8_weights(model)` of an earlier run, which skips quantizing
    them again. With `fuse`, q/k/v and gate/up become one GEMM each. The rest of the model
    (norms, attention arithmetic) runs in float32; a bf16 input embedding stays bf16 (`Bf16Lookup`,
    its rows widened to float32). CPU only.
    Memory: the new layers are packed for FBGEMM on all of torch's threads while the next modules are
    converted, at most a few layers ahead, so only a few layers' float and plain int8 weights are alive at once. With
    `pack=False` the int8 weights stay plain (to be saved; each layer packs itself on first use).
    """
    torch.backends.quantized.engine = "fbgemm" if has_fbgemm() else "x86"
    # only the parents: a list holding the linears themselves would keep every float weight alive until the end
    parents = [(prefix, module) for prefix, module in model.named_modules() if next(module.children(), None)]
    with LayerPacker(torch.get_num_threads()) as packer:
        for prefix, module in parents:  # the root first: its lm_head, the slowest to pack, overlaps the layers
            layers = replace_linears(module, f"{prefix}." if prefix else "", saved or {}, fuse)
            if pack:
                packer.pack(layers)
    embedding = model.get_input_embeddings()
    if isinstance(embedding, nn.Embedding) and embedding.weight.dtype == torch.bfloat16:  # exact only from bf16
        model.set_input_embeddings(Bf16Lookup(embedding))
    return model.float()  # what is left: norms, biases, rotary tables (and position embeddings)


class Bf16Lookup(nn.Module):
    """An input embedding table kept in bf16 (half the bytes of float32) whose looked-up rows come out in float32.

    Bit for bit what a float32 copy of the same bf16 table gives (widening bf16 to float32 is exact), for
    0.5-0.9 GB less memory on the offline pair. Stored as int16 bits so that `model.float()` leaves it alone.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        if embedding.weight.dtype != torch.bfloat16:
            raise ValueError(f"embedding must hold a bf16 table, got {embedding.weight.dtype}")
        self.padding_idx = embedding.padding_idx
        self.register_buffer("bits", embedding.weight.detach().view(torch.int16))  # [vocab, d], a bf16 table

    @property
    def weight(self) -> torch.Tensor:  # [vocab, d] bf16
        return self.bits.view(torch.bfloat16)

    @property
    def num_embeddings(self) -> int:  # as nn.Embedding
        return self.bits.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.bits.shape[1]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # [..., ] -> [..., d] float32
        return nn.functional.embedding(ids, self.weight, self.padding_idx).float()


def int8_weights(model: nn.Module) -> Int8Weights:
    """Every Int8Linear's int8 weight and scales, keyed as `quantize_model(saved=...)` reads them."""
    return {f"{name}.{part}": getattr(module, part) for name, module in model.named_modules()
            if isinstance(module, Int8Linear) for part in ("int8_weight", "scale")}
