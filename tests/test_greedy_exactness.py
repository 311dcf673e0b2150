"""Greedy speculative decoding returns exactly the target's greedy tokens (fp32, tiny models).

speculative_generate == autoregressive_generate == model.generate(do_sample=False), for
K = 1..8, 20 prompts, GPT-2 (learned positions) and Qwen2 (rotary), sdpa and eager attention.
"""

import pytest
import torch

from specdec_lite import HeuristicK, autoregressive_generate, speculative_generate
from specdec_lite.models.tiny_models import TINY_VOCAB, tiny_pair

N_PROMPTS, MAX_NEW = 20, 16


def prompts() -> list[list[int]]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(1, TINY_VOCAB, (1 + i % 9,), generator=generator).tolist() for i in range(N_PROMPTS)]


def hf_greedy(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    ids = torch.tensor([prompt])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False)
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module", params=[("gpt2", "sdpa"), ("qwen2", "sdpa"), ("gpt2", "eager"), ("llama", "eager")],
                ids=lambda p: "-".join(p))
def pair(request):
    arch, attn = request.param
    return tiny_pair(arch, attn=attn)


@pytest.fixture(scope="module")
def references(pair) -> dict:
    """Plain greedy tokens per prompt, computed once per pair."""
    return {tuple(prompt): autoregressive_generate(pair, prompt, MAX_NEW).token_ids for prompt in prompts()}


def test_autoregressive_equals_hf_generate(pair, references):
    for prompt in prompts():
        assert references[tuple(prompt)] == hf_greedy(pair.target, prompt, MAX_NEW)


@pytest.mark.parametrize("k", range(1, 9))
def test_speculative_equals_target_greedy(pair, references, k):
    accepted = 0
    for prompt in prompts():
        result = speculative_generate(pair, prompt, MAX_NEW, k=k)
        assert result.token_ids == references[tuple(prompt)], f"prompt {prompt}"
        accepted += result.stats.accepted
    assert accepted > 0  # the draft agrees sometimes: the acceptance path is exercised too


def test_adaptive_k_and_confidence_stop_stay_exact(pair, references):
    for prompt in prompts():
        reference = references[tuple(prompt)]
        assert speculative_generate(pair, prompt, MAX_NEW, k=HeuristicK()).token_ids == reference
        assert speculative_generate(pair, prompt, MAX_NEW, k=6, min_confidence=0.6).token_ids == reference
