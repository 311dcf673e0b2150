"""A decoder layer of the int8 path in one function: Hugging Face's arithmetic, op for op, with fewer calls.

Why: after int8 (`quantize.py`), a one-token forward of the 0.5B draft spent about half its time
outside the matrix products (profiled: 0.7 ms of int8 GEMM kernels per layer, 2.0 ms per layer in
all), in ~120 small tensor operations and the Python around them: module calls, keyword
plumbing, q and k rotated one after the other, new tensors for every scaling. `layer_forward`
computes the same layer with the linears called directly, q and k rotated in one product (they
come out of one fused GEMM), and the scalings done in place.

It is bit for bit Hugging Face's layer (tested on Qwen2 and Llama, one row, a verify forward and a
tree mask): every operation is the same elementwise or row-wise one, in the same order, so the
notebooks' int8 numbers do not change and a (K+1)-row verify still equals K+1 one-row forwards.

`install(model)` sets it on every layer it can serve; a layer falls back to its class's forward
when the attention is no longer "row_by_row" (e.g. after `set_attn_implementation("sdpa")`).

What it does not do: GPT-2 or any other layer layout (they keep Hugging Face's layer), sliding
windows, batches of more than one sequence, returning attention weights, or training (no dropout).
"""

from __future__ import annotations

import types

import torch
from torch import nn

from . import row_attention
from .int4_draft import Int4Linear
from .quantize import FusedInt8Linear, Int8Linear

LAYER_CLASSES = ("Qwen2DecoderLayer", "LlamaDecoderLayer")  # same layout: pre-norm, rotary q/k, gated MLP
LINEARS = (Int8Linear, Int4Linear)  # what the layer calls `.matmul` on


def rms_norm(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """Hugging Face's RMSNorm in float32: weight * x / sqrt(mean(x^2) + eps), row by row. x: [rows, d]."""
    return norm.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(norm.variance_epsilon)))


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of x [rows, heads, head_dim] with cos, sin [rows, 1, head_dim]: every head
    turned by its row's angles, as `apply_rotary_pos_emb` (q and k together: they share the angles)."""
    half = x.shape[-1] // 2
    return (x * cos) + (torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin)


def heads(x: torch.Tensor) -> torch.Tensor:
    """[rows, heads, head_dim] -> [1, heads, rows, head_dim], the layout of the cache and the attention."""
    return x.transpose(0, 1)[None]


def can_serve(layer: nn.Module) -> bool:
    """Whether `layer_forward` computes this layer: a Qwen2/Llama layer whose q/k/v and gate/up are fused int8
    GEMMs (or int4 ones, `int4_draft.py`), without a sliding window."""
    attention, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    return (type(layer).__name__ in LAYER_CLASSES
            and isinstance(getattr(attention, "fused_q_k_v", None), FusedInt8Linear)
            and isinstance(getattr(attention, "o_proj", None), LINEARS)
            and isinstance(getattr(mlp, "fused_gate_up", None), FusedInt8Linear)
            and isinstance(getattr(mlp, "down_proj", None), LINEARS)
            and getattr(attention, "sliding_window", None) is None)


def layer_forward(self: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                  position_ids: torch.Tensor | None = None, cache=None, use_cache: bool | None = False,
                  position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None, **kwargs) -> torch.Tensor:
    """One decoder layer, hidden_states [1, m, d] -> [1, m, d] (the signature of Hugging Face's layer)."""
    attention, mlp = self.self_attn, self.mlp
    if attention.config._attn_implementation != row_attention.NAME or hidden_states.shape[0] != 1 or cache is None:
        return type(self).forward(self, hidden_states, attention_mask=attention_mask, position_ids=position_ids,
                                  cache=cache, use_cache=use_cache, position_embeddings=position_embeddings, **kwargs)
    _, m, d = hidden_states.shape
    x = hidden_states.reshape(m, d)  # [m, d]: the residual stream
    n_q, n_k, _ = attention.fused_q_k_v.sizes
    qkv = attention.fused_q_k_v.fused.matmul(rms_norm(x, self.input_layernorm))  # [m, n_q + n_k + n_v]
    cos, sin = (t[0, :, None] for t in position_embeddings)  # [m, 1, head_dim]
    qk = rotate(qkv[:, :n_q + n_k].view(m, -1, attention.head_dim), cos, sin)  # [m, heads + kv_heads, head_dim]
    q_heads = n_q // attention.head_dim
    k, v = cache.update(heads(qk[:, q_heads:]), heads(qkv[:, n_q + n_k:].view(m, -1, attention.head_dim)),
                        attention.layer_idx)  # [1, kv_heads, keys, head_dim] each, the cached prefix included
    out, _ = row_attention.row_by_row_attention(attention, heads(qk[:, :q_heads]), k, v, attention_mask,
                                                attention.scaling)  # [1, m, heads, head_dim]
    x = x + attention.o_proj.matmul(out.reshape(m, -1))
    gate, up = mlp.fused_gate_up.fused.matmul(rms_norm(x, self.post_attention_layernorm)).split(
        mlp.fused_gate_up.sizes, dim=-1)  # [m, intermediate] each
    x = x + mlp.down_proj.matmul(mlp.act_fn(gate).mul_(up))
    return x.reshape(1, m, d)


def install(model: nn.Module) -> int:
    """Give every layer of `model` that `can_serve` the one-function forward, in place; returns how many."""
    layers = [module for module in model.modules() if can_serve(module)]
    for layer in layers:
        layer.forward = types.MethodType(layer_forward, layer)
    return len(layers)
