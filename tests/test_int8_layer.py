"""The one-function int8 decoder layer computes Hugging Face's layer bit for bit, and steps aside where it cannot."""

import pytest
import torch

from specdec_lite.algorithm.kv_cache import forward_new_tokens, new_cache
from specdec_lite.algorithm.token_tree import build_tree, forward_tree_nodes
from specdec_lite.models import int8_layer, row_attention
from specdec_lite.models.quantize import quantize_model
from specdec_lite.models.tiny_models import tiny_model


def int8_model(arch: str):
    model = quantize_model(tiny_model(arch, layers=3))
    model.set_attn_implementation(row_attention.NAME)
    return model


def class_forward(model) -> None:
    """Back to Hugging Face's own layer forward."""
    for module in model.modules():
        module.__dict__.pop("forward", None)


def logits_of_every_kind_of_forward(model) -> list[torch.Tensor]:
    """A prefill, one-token forwards, a 5-row verify forward and a tree forward, each on a fresh cache."""
    ids = torch.randint(0, 32, (1, 24), generator=torch.Generator().manual_seed(3))
    cache = new_cache(model)
    out = [forward_new_tokens(model, cache, ids[:, :12])]
    out += [forward_new_tokens(model, cache, ids[:, j:j + 1]) for j in range(12, 15)]
    out.append(forward_new_tokens(model, cache, ids[:, 15:20]))
    tree = build_tree(5, [[1, 2, 3], [1, 4], [6, 7]])  # 7 drafted nodes, branching at the root and below it
    out.append(forward_tree_nodes(model, cache, tree, range(len(tree)), range(len(tree)), cache.get_seq_length()))
    return out


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_one_function_layer_equals_hugging_faces_layer_bit_for_bit(arch):
    model = int8_model(arch)
    reference = logits_of_every_kind_of_forward(model)
    assert int8_layer.install(model) == model.config.num_hidden_layers
    ours = logits_of_every_kind_of_forward(model)
    assert all(torch.equal(a, b) for a, b in zip(ours, reference))
    class_forward(model)  # the check can fail: a layer that skips its MLP changes every logit
    model.model.layers[1].forward = lambda hidden_states, **kwargs: hidden_states
    assert not torch.equal(logits_of_every_kind_of_forward(model)[0], reference[0])


def test_gpt2_and_float_layers_keep_their_own_forward():
    assert int8_layer.install(int8_model("gpt2")) == 0  # another layer layout
    assert int8_layer.install(tiny_model("qwen2")) == 0  # float linears: nothing fused in int8


def test_the_layer_falls_back_to_hugging_face_when_the_attention_is_not_row_by_row():
    model = int8_model("qwen2")
    model.set_attn_implementation("sdpa")
    reference = logits_of_every_kind_of_forward(model)
    int8_layer.install(model)
    assert all(torch.equal(a, b) for a, b in zip(logits_of_every_kind_of_forward(model), reference))
