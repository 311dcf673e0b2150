"""On the real offline pair (fp32): speculative greedy == plain greedy == Hugging Face generate."""

import pytest
import torch

from specdec_lite import autoregressive_generate, load_pair, speculative_generate

pytestmark = pytest.mark.slow
PROMPTS = ["def quicksort(items):", "The three primary colours are", "Q: What is the capital of France?\nA:"]
MAX_NEW = 24


@pytest.fixture(scope="module")
def pair():
    pair = load_pair(dtype="float32", device="cpu")
    yield pair
    pair.release()  # ~11 GB: free it before the next module (or an nbval kernel) loads another copy


@pytest.mark.parametrize("prompt", PROMPTS)
def test_speculative_greedy_is_target_greedy(pair, prompt):
    ids = pair.encode(prompt)
    hf = pair.target.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_NEW, do_sample=False)
    reference = hf[0, ids.shape[1]:].tolist()
    assert autoregressive_generate(pair, prompt, MAX_NEW).token_ids == reference
    result = speculative_generate(pair, prompt, MAX_NEW, k=4)
    assert result.token_ids == reference
    assert result.stats.accepted > 0
