"""Cache rollback: cropping then continuing gives the same logits as a fresh forward over the kept tokens."""

import pytest
import torch

from specdec_lite.algorithm.kv_cache import cache_length, forward_new_tokens, keep_first, new_cache
from specdec_lite.models.tiny_models import tiny_model


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
@pytest.mark.parametrize("keep", [1, 4, 7])
def test_rollback_then_continue_equals_fresh_forward(arch, keep):
    model = tiny_model(arch)
    ids = torch.randint(1, 32, (1, 10), generator=torch.Generator().manual_seed(keep))
    cont = torch.tensor([[5, 9, 2]])
    cache = new_cache(model)
    forward_new_tokens(model, cache, ids)  # 10 tokens in the cache
    keep_first(cache, keep)  # roll back to the first `keep`
    assert cache_length(cache) == keep
    after_rollback = forward_new_tokens(model, cache, cont)  # [3, vocab]
    fresh = forward_new_tokens(model, new_cache(model), torch.cat([ids[:, :keep], cont], 1))[-3:]
    assert torch.allclose(after_rollback, fresh, atol=1e-5)


def test_keep_first_refuses_to_grow():
    model = tiny_model("gpt2")
    cache = new_cache(model)
    forward_new_tokens(model, cache, torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="n_tokens"):
        keep_first(cache, 4)
    keep_first(cache, 3)  # no-op
    assert cache_length(cache) == 3
