"""Attention computed one query row at a time over exactly the keys that row may see.

Why: with per-row int8 activations (`quantize.py`) the matrix products are row-independent, but
fused attention kernels are not: a query row's softmax and weighted sum run over the whole key
length, masked entries included, and the summation order depends on that length. A verification
forward over K+1 rows then rounds row i slightly differently from the one-row forward of plain
decoding, and int8 rounding turns those 1e-6 differences into different tokens.

Here row i attends to the keys its mask row leaves visible, gathered in order, in a product of
the same shape as a one-row forward over that context: the result for row i is bit for bit what
plain decoding computes at that position (tested). It works for a causal mask and for the
token-tree mask (each node sees the prefix and its ancestors).

Registered with Hugging Face's AttentionInterface as "row_by_row":
`model.set_attn_implementation("row_by_row")` after importing this module.

What it does not do: dropout, sliding windows, batches of several sequences with padding, or
return attention weights. It is slower than fused attention for long prefills (one small
product per row), which is why only the int8 path uses it.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.masking_utils import eager_mask

NAME = "row_by_row"


def visible_keys(mask: torch.Tensor | None, row: int, n_rows: int, n_keys: int) -> slice | torch.Tensor:
    """The key positions query `row` may see: a slice when they are a prefix, else their indices."""
    if mask is None:  # causal, no padding: the rows are the last n_rows positions
        return slice(0, n_keys - n_rows + row + 1)
    index = (mask[0, 0, row, :n_keys] == 0).nonzero().squeeze(1)  # additive mask: 0 = visible
    count = index.shape[0]
    return slice(0, count) if int(index[-1]) == count - 1 else index


class LastMaskKeys:
    """`visible_keys` of every row, remembered for the last mask seen: every layer of one forward gets the same
    mask object, so the keys are found once per forward instead of once per layer. It holds that mask, so a new
    mask cannot reuse its identity. What it does not notice: a mask changed in place between two forwards (every
    mask here is built new for each forward, by Hugging Face's mask functions or `tree_attention_mask`)."""

    def __init__(self) -> None:
        self.mask: torch.Tensor | None = None
        self.key: tuple[int, int] = (0, 0)
        self.rows: list[slice | torch.Tensor] = []

    def __call__(self, mask: torch.Tensor | None, n_rows: int, n_keys: int) -> list[slice | torch.Tensor]:
        key = (n_rows, n_keys)
        if mask is not self.mask or self.key != key:  # no mask: the keys depend on the sizes alone
            self.rows = [visible_keys(mask, row, n_rows, n_keys) for row in range(n_rows)]
            self.mask, self.key = mask, key
        return self.rows


rows_keys = LastMaskKeys()


def row_by_row_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0, **kwargs):
    """query [b, h, m, d], key/value [b, h_kv, n, d] -> ([b, m, h, d], None), one query row at a time."""
    b, h, m, d = query.shape
    h_kv, n = key.shape[1], key.shape[2]
    grouped = query.view(b, h_kv, h // h_kv, m, d)  # heads sharing a key head side by side
    keys_t = key.transpose(-1, -2)  # [b, h_kv, d, n], a view: the layout a one-row forward multiplies by
    rows = []
    for i, keys in enumerate(rows_keys(attention_mask, m, n)):
        if isinstance(keys, slice):  # a prefix of the keys (every row of a chain): views, no copy
            keys_t_i, v_i = keys_t[..., keys], value[:, :, keys]  # [b, h_kv, d, n_i], [b, h_kv, n_i, d]
        else:  # a tree node's keys: copied key by key (whole rows of the cache), then viewed as a one-row forward does
            keys_t_i, v_i = key.index_select(2, keys).transpose(-1, -2), value.index_select(2, keys)
        weights = (grouped[:, :, :, i] @ keys_t_i).mul_(scaling).softmax(-1, dtype=torch.float32)  # [b, h_kv, groups, n_i]
        rows.append((weights.to(v_i.dtype) @ v_i).view(b, 1, h, d))
    return (rows[0] if m == 1 else torch.cat(rows, dim=1)), None


AttentionInterface.register(NAME, row_by_row_attention)
AttentionMaskInterface.register(NAME, eager_mask)
