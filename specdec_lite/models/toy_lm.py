"""A trigram language model that speaks the Hugging Face interface: for statistics that need 10^4+ runs.

`TrigramLM` looks its next-token logits up in a table indexed by the two previous tokens. It
keeps its context in a real `DynamicCache` (each cached "key" is a token id), so the
speculative loop drives it exactly like a transformer: prefill, multi-token verification,
`crop` rollback. A wrong rollback shows up as a wrong context, hence a wrong distribution.
A forward costs microseconds instead of milliseconds, which makes 20,000-sample
distribution tests affordable. It also honours a 4D additive attention mask: each query sees
only the positions whose mask entry is 0 (its last two visible tokens are its context).

What it does not do: learn, batch (batch size 1 only), or anything beyond two tokens of context.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from transformers import DynamicCache, GenerationConfig, PretrainedConfig

NO_TOKEN = -1  # context slot before the first token


class TrigramLM(torch.nn.Module):
    """logits(next | a, b) = table[a, b], where b is the last visible token and a the one before."""

    def __init__(self, vocab_size: int = 16, seed: int = 0, scale: float = 2.0, max_positions: int = 256):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        # row `vocab_size` stands for "no token": contexts shorter than two tokens
        self.table = scale * torch.randn(vocab_size + 1, vocab_size + 1, vocab_size, generator=generator)
        self.config = PretrainedConfig(num_hidden_layers=1, vocab_size=vocab_size, max_position_embeddings=max_positions)
        self.config._attn_implementation = "eager"  # it applies a 4D additive mask as eager attention does
        self.generation_config = GenerationConfig(eos_token_id=None)

    def get_output_embeddings(self) -> SimpleNamespace:
        return SimpleNamespace(weight=torch.empty(self.table.shape[-1], 0))

    def context(self, visible: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last two visible token ids for each query. visible: [n, total] bool, ids: [total] -> ([n], [n])."""
        vocab = self.table.shape[-1]
        order = torch.arange(1, ids.shape[0] + 1)  # [total] 1-based so that 0 means "none"
        last = (visible * order).amax(-1)  # [n]
        before = (visible * order * (order < last[:, None])).amax(-1)  # [n]
        padded = torch.cat([torch.tensor([vocab]), ids])  # index 0 -> "no token"
        return padded[before], padded[last]

    def forward(self, input_ids: torch.Tensor, cache: DynamicCache | None = None, attention_mask=None,
                position_ids=None, use_cache: bool = True, **kwargs) -> SimpleNamespace:
        """input_ids: [1, n] -> logits [1, n, vocab]; the ids are appended to `cache` as keys."""
        new = input_ids[0].float().view(1, 1, -1, 1)  # [1, heads=1, n, dim=1]
        cache = DynamicCache(config=self.config) if cache is None else cache
        ids = cache.update(new, new, layer_idx=0)[0].view(-1).long()  # [total] every token seen so far
        n, total = input_ids.shape[1], ids.shape[0]
        if attention_mask is not None and attention_mask.dim() == 4:
            a, b = self.context(attention_mask[0, 0] == 0, ids)  # mask [n, total]: 0 = visible
        else:  # causal: query j sees everything up to itself
            padded = torch.cat([torch.tensor([self.table.shape[-1]]), ids])  # [1 + total]
            a, b = padded[total - n: total], padded[total - n + 1:]
        return SimpleNamespace(logits=self.table[a, b].unsqueeze(0), cache=cache)

    def exact_next(self, context_ids: list[int]) -> torch.Tensor:
        """Next-token logits after `context_ids` (for computing exact distributions), [vocab]."""
        vocab = self.table.shape[-1]
        padded = [vocab, vocab] + list(context_ids)
        return self.table[padded[-2], padded[-1]]
