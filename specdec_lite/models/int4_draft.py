"""A draft with int4 weights: half the bytes of int8, so a draft forward, which reads them all, costs less.

Why: on the int8 path the draft's forwards are what separates speculative decoding from a bigger
speed-up (README, "Where the time goes"): c, a draft forward over a target forward, was 0.46, and
int8 bytes alone put it at 0.32. The draft's tokens need no exactness, only agreement with the
target: verification keeps the output equal to the target's, whatever the draft proposes. So
the draft may run in a format the target cannot.

`Int4Linear` replaces an `Int8Linear` of an int8 draft:
  - weights: 4 bits, asymmetric, one scale and one offset per group of `group_size` input
    channels of an output channel; quantized from the int8 weights (w = q8 * s), so no other
    file is read. Rounding twice adds at most half an int8 step (1/254 of the row's largest
    weight) to int4's own error of up to half a 4-bit step (1/30 of the group's range);
  - activations: bfloat16, the input PyTorch's CPU int4 kernel (`_weight_int4pack_mm_for_cpu`)
    takes; the result comes back in float32, as an `Int8Linear`'s does.
`to_int4(model)` converts every `Int8Linear` in place (the fused q/k/v and gate/up GEMMs and the
head included), so `int8_layer.py`'s one-function layer keeps serving the model.

What it does not do: the target (its verify rows must equal its one-row forwards bit for bit,
and a bf16 input does not keep int8's row independence: not tested for int4), GPUs, a model
that was not quantized to int8 first, or int4 embeddings. Measured on one machine only (README).
"""

from __future__ import annotations

import torch
from torch import nn

from .quantize import Int8Linear

GROUP_SIZE = 128  # input channels per scale: 64 measured no better agreement on the offline draft (README)
LEVELS = 15  # 4 bits: codes 0..15
PACK_ROWS = 16  # the kernel's packing wants out_features in multiples of 16


def has_int4_kernel() -> bool:
    """Whether this PyTorch has the CPU int4 weight kernel `to_int4` needs."""
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")


def quantize_int4(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [out, in] float -> (codes [out, in] int32 in 0..15, scales_and_zeros [in / group_size, out, 2]).

    Per group of `group_size` inputs: scale = (max - min) / 15 and code = round((w - min) / scale). The
    kernel computes w = (code - 8) * scale + zero, so zero = min + 8 * scale.
    """
    n_out, n_in = weight.shape
    groups = weight.float().view(n_out, n_in // group_size, group_size)  # [out, groups, group_size]
    low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)  # [out, groups, 1]
    scale = (high - low).clamp_min(1e-8) / LEVELS
    codes = ((groups - low) / scale).round().clamp(0, LEVELS).to(torch.int32).view(n_out, n_in)
    zero = low + 8 * scale
    scales_and_zeros = torch.stack([scale.view(n_out, -1).t(), zero.view(n_out, -1).t()], dim=-1)  # [groups, out, 2]
    return codes, scales_and_zeros.contiguous()


def dequantize_int4(codes: torch.Tensor, scales_and_zeros: torch.Tensor) -> torch.Tensor:
    """The weight [out, in] float32 the codes stand for (for tests and inspection)."""
    n_out, n_in = codes.shape
    n_groups = scales_and_zeros.shape[0]
    scale, zero = (scales_and_zeros[..., i].float().t()[..., None] for i in (0, 1))  # [out, groups, 1] each
    return ((codes.view(n_out, n_groups, -1).float() - 8) * scale + zero).view(n_out, n_in)


class Int4Linear(nn.Module):
    """An `Int8Linear`'s stand-in with 4-bit group-wise weights and bf16 activations (float32 in and out)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int = GROUP_SIZE):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        if self.in_features % group_size:
            raise ValueError(f"group_size must divide the input size {self.in_features}, got {group_size}")
        if self.out_features % PACK_ROWS:
            raise ValueError(f"the int4 kernel packs outputs {PACK_ROWS} at a time: out_features must be a multiple "
                             f"of {PACK_ROWS}, got {self.out_features}")
        self.group_size = group_size
        codes, scales_and_zeros = quantize_int4(weight, group_size)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1))
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(torch.bfloat16))
        self.register_buffer("bias", None if bias is None else bias.detach().float())

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """x [rows, in] float32 -> [rows, out] float32, bias included."""
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.packed, self.group_size,
                                                        self.scales_and_zeros).float()
        return y if self.bias is None else y.add_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out]
        return self.matmul(x.reshape(-1, self.in_features).float()).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}, "
                f"bias={self.bias is not None}")


def int4_from_int8(linear: Int8Linear, group_size: int) -> Int4Linear:
    """The int4 twin of an int8 linear, from its weights q8 * s."""
    return Int4Linear(linear.int8_weight.float() * linear.scale[:, None], linear.bias, group_size)


def pick_group_size(linears: list[Int8Linear]) -> int:
    """GROUP_SIZE, or the largest of 64 and 32 that divides every layer's input size (small test models)."""
    for size in (GROUP_SIZE, 64, 32):
        if all(linear.in_features % size == 0 for linear in linears):
            return size
    raise ValueError(f"no group size of {(GROUP_SIZE, 64, 32)} divides every input size of the model's linears")


@torch.inference_mode()
def to_int4(model: nn.Module, group_size: int | None = None) -> int:
    """Replace every `Int8Linear` of `model` (an int8 model, `precision.load_int8_model`) by an `Int4Linear`, in
    place; returns how many. group_size None: `pick_group_size`. ValueError when the model has no int8 linear,
    a size does not fit the kernel, or this PyTorch lacks the int4 kernel."""
    if not has_int4_kernel():
        raise ValueError("this PyTorch has no CPU int4 kernel (_weight_int4pack_mm_for_cpu); use the int8 draft")
    owners = [(module, name, child) for module in model.modules() for name, child in module.named_children()
              if isinstance(child, Int8Linear)]  # the fused q/k/v and gate/up GEMMs are children of their group
    if not owners:
        raise ValueError("the model has no int8 linear layer to convert: load it with dtype='int8' first")
    group_size = pick_group_size([child for _, _, child in owners]) if group_size is None else group_size
    for module, name, child in owners:
        setattr(module, name, int4_from_int8(child, group_size))
    return len(owners)


def is_int4(model: nn.Module) -> bool:
    """Whether `to_int4` converted this model."""
    return any(isinstance(module, Int4Linear) for module in model.modules())
