"""The transformers internals specdec_lite relies on, checked one by one (pyproject pins the tested minor range).

`kv_cache.keep_first` rolls a cache back with `DynamicCache.crop(-n)`; `tree_verification.keep_positions`
rewrites `layer.keys` / `layer.values` of every `DynamicLayer` in `cache.layers` and refuses sliding-window
layers by their `cumulative_length`; `kv_cache.forward_new_tokens` passes the cache as `cache=`. A
transformers release that changes any of these fails here, with a message naming what changed, rather
than somewhere inside a generate call.
"""

import torch
import transformers
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from specdec_lite.algorithm.kv_cache import cache_length, forward_new_tokens, new_cache
from specdec_lite.models.tiny_models import tiny_model

N_TOKENS = 6
VERSION = f"transformers {transformers.__version__} (tested: 5.24)"


def filled_cache() -> tuple[DynamicCache, int]:
    """A tiny qwen2 model's cache after N_TOKENS tokens, and the model's layer count."""
    model = tiny_model("qwen2")
    cache = new_cache(model)
    forward_new_tokens(model, cache, torch.arange(1, N_TOKENS + 1)[None])
    assert cache_length(cache) == N_TOKENS, f"{VERSION}: a forward with cache= no longer fills the cache it is given"
    return cache, model.config.num_hidden_layers


def test_cache_layers_are_dynamic_layers_with_keys_and_values():
    cache, n_layers = filled_cache()
    layers = getattr(cache, "layers", None)
    assert isinstance(layers, list) and len(layers) == n_layers, f"{VERSION}: DynamicCache.layers is not a list of layers"
    for layer in layers:
        assert type(layer) is DynamicLayer, f"{VERSION}: cache layers are {type(layer).__name__}, not DynamicLayer"
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            assert isinstance(tensor, torch.Tensor) and tensor.dim() == 4 and tensor.shape[-2] == N_TOKENS, (
                f"{VERSION}: layer.{name} is not a [batch, heads, seq, head_dim] tensor")
    assert not hasattr(layers[0], "cumulative_length"), f"{VERSION}: DynamicLayer now has cumulative_length"
    assert "cumulative_length" in vars(DynamicSlidingWindowLayer(sliding_window=4)), (
        f"{VERSION}: sliding-window layers no longer have cumulative_length (keep_positions tells them apart by it)")


def test_crop_takes_a_negative_count_of_tokens_to_drop():
    cache, _ = filled_cache()
    cache.crop(0)
    assert cache_length(cache) == N_TOKENS, f"{VERSION}: DynamicCache.crop(0) is no longer a no-op"
    cache.crop(-2)
    assert cache_length(cache) == N_TOKENS - 2, f"{VERSION}: DynamicCache.crop(-2) no longer drops 2 tokens"
    assert all(layer.keys.shape[-2] == layer.values.shape[-2] == N_TOKENS - 2 for layer in cache.layers), (
        f"{VERSION}: DynamicCache.crop(-2) no longer crops every layer's keys and values")


def test_assigning_layer_keys_and_values_changes_the_cache_length():
    cache, _ = filled_cache()
    keep = torch.tensor([0, 2, 5])
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys.index_select(-2, keep), layer.values.index_select(-2, keep)
    assert cache_length(cache) == len(keep), (
        f"{VERSION}: the cache length no longer follows layer.keys (keep_positions compacts the cache that way)")
