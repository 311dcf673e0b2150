"""The int8 path: per-row activation scales make rows independent, so a K-token verify computes exactly
what K one-token forwards compute, and greedy speculative decoding equals plain greedy in int8 as in fp32."""

import copy

import pytest
import torch
from torch import nn

from specdec_lite import autoregressive_generate, load_pair, speculative_generate, tree_generate
from specdec_lite.algorithm.kv_cache import forward_new_tokens, new_cache
from specdec_lite.models import precision, row_attention
from specdec_lite.models.quantize import FusedPart, Int8Linear, int8_matmul, int8_weights, pack_weight, quantize_model, \
    quantize_weight
from specdec_lite.models.tiny_models import save_tiny_pair, tiny_int8_pair, tiny_pair

ARCHS = ["gpt2", "qwen2", "llama"]


def test_int8_linear_is_close_to_float_and_rows_are_independent():
    torch.manual_seed(0)
    linear = nn.Linear(96, 40)
    layer = Int8Linear(*quantize_weight(linear.weight), linear.bias)
    x = torch.randn(7, 96) * torch.logspace(-2, 1, 7)[:, None]  # rows of very different size
    together = layer(x)
    alone = torch.cat([layer(x[i:i + 1]) for i in range(7)])
    assert torch.equal(together, alone)  # bit for bit: each row has its own activation scale
    relative = (together - linear(x)).norm(dim=-1) / linear(x).norm(dim=-1)
    assert relative.max() < 0.05


def test_per_tensor_dynamic_quantization_is_not_row_independent():
    """The control: PyTorch's quantize_dynamic path (one scale per call) mixes rows, which is why we do not use it."""
    torch.manual_seed(0)
    weight = torch.randn(40, 96)
    int8_weight, scale = quantize_weight(weight)
    packed = pack_weight(int8_weight)
    x = torch.randn(5, 96) * torch.tensor([0.01, 1, 1, 1, 10])[:, None]
    dynamic = torch.ops.quantized.linear_dynamic(x, packed, True)
    assert not torch.equal(dynamic[:1], torch.ops.quantized.linear_dynamic(x[:1], packed, True))
    assert torch.equal(int8_matmul(x, packed, scale)[:1], int8_matmul(x[:1], packed, scale))


@pytest.mark.parametrize("arch", ARCHS)
def test_quantized_model_has_no_float_linear_left_and_fuses_projections(arch):
    model = tiny_int8_pair(arch).target
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear" not in kinds and "Conv1D" not in kinds
    assert isinstance(model.get_output_embeddings(), Int8Linear)  # lm_head included
    if arch != "gpt2":
        assert any(isinstance(m, FusedPart) for m in model.modules())  # q/k/v and gate/up in one GEMM each


@pytest.mark.parametrize("arch", ARCHS)
def test_verify_forward_equals_one_token_forwards_bit_for_bit(arch):
    model = tiny_int8_pair(arch).target
    ids = torch.randint(0, model.config.vocab_size, (1, 20), generator=torch.Generator().manual_seed(1))
    together = new_cache(model)
    forward_new_tokens(model, together, ids[:, :14])
    verify = forward_new_tokens(model, together, ids[:, 14:])  # [6, vocab] in one forward
    alone = new_cache(model)
    forward_new_tokens(model, alone, ids[:, :13])  # a different prefill split, too
    forward_new_tokens(model, alone, ids[:, 13:14])
    singles = torch.cat([forward_new_tokens(model, alone, ids[:, j:j + 1]) for j in range(14, 20)])
    assert torch.equal(verify, singles)


@pytest.mark.parametrize("arch", ARCHS)
def test_tree_forward_rows_equal_one_token_forwards_along_their_branch_bit_for_bit(arch):
    from specdec_lite.algorithm.token_tree import build_tree, forward_tree_nodes

    model = tiny_int8_pair(arch).target
    ids = torch.randint(0, model.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(2))
    tree = build_tree(5, [[1, 2, 3], [1, 4], [6, 7]])  # branches at the root and below it: gathered keys
    cache = new_cache(model)
    forward_new_tokens(model, cache, ids)
    rows = forward_tree_nodes(model, cache, tree, range(len(tree)), range(len(tree)), ids.shape[1])  # [N, vocab]
    for node in range(len(tree)):
        alone = new_cache(model)
        forward_new_tokens(model, alone, ids)
        for v in tree.path_to(node):  # the root, then the node's ancestors, then the node: one token at a time
            logits = forward_new_tokens(model, alone, tree.tokens[v].view(1, 1))
        assert torch.equal(rows[node], logits[-1]), f"node {node}"


def test_row_attention_is_needed_for_exactness():
    """The control: with PyTorch's sdpa the same int8 model's verify rows differ from one-token forwards."""
    model = tiny_int8_pair("qwen2").target
    model.set_attn_implementation("sdpa")
    for seed in range(3):
        ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(seed))
        cache = new_cache(model)
        forward_new_tokens(model, cache, ids[:, :30])
        verify = forward_new_tokens(model, cache, ids[:, 30:])  # [10, vocab]
        cache = new_cache(model)
        forward_new_tokens(model, cache, ids[:, :30])
        singles = torch.cat([forward_new_tokens(model, cache, ids[:, j:j + 1]) for j in range(30, 40)])
        assert not torch.equal(verify, singles)


def test_visible_keys_are_found_once_per_mask_and_again_for_a_new_mask():
    keys = row_attention.LastMaskKeys()
    mask = torch.zeros(1, 1, 2, 4)
    mask[0, 0, 0, 2:] = float("-inf")  # row 0 sees keys 0-1, row 1 sees all four
    first = keys(mask, 2, 4)
    assert keys(mask, 2, 4) is first and [r.stop for r in first] == [2, 4]  # the next layer: not searched again
    tree_mask = mask.clone()
    tree_mask[0, 0, 1, 1] = float("-inf")  # the next forward's mask: row 1 skips key 1
    assert torch.equal(keys(tree_mask, 2, 4)[1], torch.tensor([0, 2, 3]))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("k", [1, 3, 6])
def test_int8_speculative_greedy_equals_int8_plain_greedy(arch, k):
    pair = tiny_int8_pair(arch, noise=0.3)
    for seed in range(5):
        prompt = torch.randint(0, pair.target.config.vocab_size, (6,), generator=torch.Generator().manual_seed(seed)).tolist()
        plain = autoregressive_generate(pair, prompt, 24, stop_at_eos=False)
        assert speculative_generate(pair, prompt, 24, k=k, stop_at_eos=False).token_ids == plain.token_ids


def test_int8_tree_greedy_equals_int8_plain_greedy():
    pair = tiny_int8_pair("qwen2", noise=0.3)
    for seed in range(5):
        prompt = torch.randint(0, pair.target.config.vocab_size, (6,), generator=torch.Generator().manual_seed(seed)).tolist()
        plain = autoregressive_generate(pair, prompt, 20, stop_at_eos=False)
        assert tree_generate(pair, prompt, 20, n_branches=2, depth=3, stop_at_eos=False).token_ids == plain.token_ids


def test_int8_weights_are_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "cache"))
    draft, target = save_tiny_pair(tmp_path / "pair", arch="qwen2")
    first = load_pair(draft=draft, target=target, dtype="int8", device="cpu")
    assert precision.int8_cache_file(target).is_file()
    calls = []
    monkeypatch.setattr("specdec_lite.models.quantize.quantize_weight", lambda w: calls.append(1))
    second = load_pair(draft=draft, target=target, dtype="int8", device="cpu")
    assert calls == []  # nothing quantized again
    for name, tensor in int8_weights(first.target).items():
        assert torch.equal(tensor, int8_weights(second.target)[name])
    assert second.dtype is torch.int8 and second.target.config._attn_implementation == row_attention.NAME


def test_int8_is_refused_off_the_cpu(tmp_path):
    draft, target = save_tiny_pair(tmp_path / "pair", arch="qwen2")
    with pytest.raises(ValueError, match="int8 runs on the CPU only"):
        load_pair(draft=draft, target=target, dtype="int8", device="cuda")


@pytest.mark.parametrize("flags, fbgemm, expected, why", [
    ({"avx2"}, True, "int8", "no bf16 matrix instructions"),
    ({"avx2", "avx512_bf16"}, True, "int8", "even with bf16 matrix instructions (avx512_bf16)"),
    ({"amx_bf16"}, True, "int8", "half of bf16's bytes"),
    ({"amx_bf16"}, False, "bfloat16", "no FBGEMM"),
    ({"neon"}, False, "float32", "no FBGEMM"),
])
def test_auto_dtype_on_a_cpu_is_int8_wherever_fbgemm_runs(monkeypatch, flags, fbgemm, expected, why):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setattr(precision, "has_fbgemm", lambda: fbgemm)
    name, reason = precision.choose_dtype(torch.device("cpu"))
    assert name == expected and why in reason


def test_auto_dtype_on_gpus(monkeypatch):
    assert precision.choose_dtype(torch.device("mps"))[0] == "float16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert precision.choose_dtype(torch.device("cuda"))[0] == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert precision.choose_dtype(torch.device("cuda"))[0] == "float16"


def test_quantize_model_leaves_the_original_float_model_usable():
    pair = tiny_pair("qwen2")
    original = copy.deepcopy(pair.target)
    quantize_model(pair.target)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.isfinite(original(ids).logits).all() and torch.isfinite(pair.target(ids).logits).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_weight_count_of_an_int8_model_equals_the_float_models_parameters(arch):
    from specdec_lite.models.pair import weight_count

    model = tiny_pair(arch).target
    expected = model.num_parameters()
    if model.config.tie_word_embeddings:  # GPT-2: the tied head becomes an int8 matrix of its own
        expected += model.get_output_embeddings().weight.numel()
    assert weight_count(quantize_model(model)) == expected


@pytest.mark.parametrize("arch", ARCHS)
def test_weight_bytes_count_the_matrices_a_forward_reads(arch):
    from specdec_lite.models.pair import weight_bytes
    from specdec_lite.models.quantize import as_linear

    model = tiny_pair(arch).target
    params = dict(model.named_parameters())  # a tied head is listed once, as the embedding
    lookups = [name for name in params if "wpe" in name or "norm" in name or ".ln_" in name or "ln_f" in name]
    if not model.config.tie_word_embeddings:  # else the embedding's one copy is read as the head
        lookups.append(next(name for name, p in params.items() if p is model.get_input_embeddings().weight))
    read = model.num_parameters() - sum(params[name].numel() for name in lookups)
    assert weight_bytes(model) == 4 * read  # fp32
    assert weight_bytes(copy.deepcopy(model).to(torch.bfloat16)) == 2 * read
    linears = [linear for m in model.modules() if (linear := as_linear(m)) is not None]
    biases = sum(linear.bias.numel() for linear in linears if linear.bias is not None)
    rows = sum(linear.out_features for linear in linears)  # one fp32 scale per output row
    assert weight_bytes(quantize_model(model)) == (read - biases) + 4 * rows + 4 * biases


def test_packing_keeps_one_copy_and_the_weight_reads_back_exactly():
    weight = torch.randn(48, 32)
    layer = Int8Linear(*quantize_weight(weight), bias=None)
    before = layer.int8_weight.clone()
    layer.packed  # packs, and drops the plain int8 copy
    assert layer._unpacked is None
    assert torch.equal(layer.int8_weight, before)  # unpacked from FBGEMM's layout, bit for bit


def test_saved_tensors_reads_what_safetensors_wrote(tmp_path):
    from safetensors.torch import save_file

    from specdec_lite.models.precision import SavedTensors

    tensors = {"a.int8_weight": torch.randint(-127, 128, (5, 3), dtype=torch.int8),
               "a.scale": torch.rand(5), "b.bias": torch.rand(2, 2).bfloat16()}
    save_file(tensors, tmp_path / "t.safetensors")
    saved = SavedTensors(tmp_path / "t.safetensors")
    assert sorted(saved) == sorted(tensors) and "a.scale" in saved and "c" not in saved
    for name, tensor in tensors.items():
        assert torch.equal(saved[name], tensor) and saved[name].dtype == tensor.dtype


def test_bf16_lookup_equals_a_float32_copy_of_the_bf16_table():
    from specdec_lite.models.quantize import Bf16Lookup

    embedding = nn.Embedding(50, 8, padding_idx=0).bfloat16()
    ids = torch.tensor([[0, 3, 49, 3]])
    lookup = Bf16Lookup(embedding).float()  # float() must leave the table in bf16
    assert lookup.weight.dtype == torch.bfloat16
    reference = nn.functional.embedding(ids, embedding.weight.detach().float())  # what model.float() gave before
    assert lookup(ids).dtype == torch.float32 and torch.equal(lookup(ids), reference)
    assert (lookup.num_embeddings, lookup.embedding_dim) == (50, 8)  # what nn.Embedding's users read


def test_bf16_lookup_refuses_a_float32_table():
    from specdec_lite.models.quantize import Bf16Lookup

    with pytest.raises(ValueError, match="bf16"):
        Bf16Lookup(nn.Embedding(4, 2))


def test_a_loaded_int8_pair_keeps_a_bf16_embedding_and_can_be_timed(tmp_path, monkeypatch):
    from specdec_lite.algorithm import theory
    from specdec_lite.models.quantize import Bf16Lookup

    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "cache"))
    draft, target = save_tiny_pair(tmp_path / "pair", arch="qwen2")
    pair = load_pair(draft=draft, target=target, dtype="int8", device="cpu")
    assert isinstance(pair.target.get_input_embeddings(), Bf16Lookup)
    assert theory.forward_time(pair.target, 4, 2, repeats=1) > 0  # reads the embedding's num_embeddings
    assert speculative_generate(pair, "ab", 8, k=3).token_ids == autoregressive_generate(pair, "ab", 8).token_ids


def test_the_int8_cache_file_is_safetensors_and_reads_back_exactly(tmp_path):
    from safetensors.torch import load_file

    from specdec_lite.models.precision import SavedTensors, save_int8_weights

    model = quantize_model(tiny_pair("qwen2").target)
    save_int8_weights(model, tmp_path / "w.safetensors")
    expected = int8_weights(model)
    for read in (load_file(tmp_path / "w.safetensors"), SavedTensors(tmp_path / "w.safetensors")):
        assert sorted(read) == sorted(expected)
        for name, tensor in expected.items():
            assert torch.equal(read[name], tensor) and read[name].dtype == tensor.dtype


def test_layer_packer_packs_every_layer_and_raises_what_a_packing_thread_raised():
    from specdec_lite.models.quantize import LayerPacker

    layers = [Int8Linear(*quantize_weight(torch.randn(8, 4)), None) for _ in range(7)]
    with LayerPacker(2) as packer:
        packer.pack(layers)
    assert all(layer._unpacked is None and layer._packed is not None for layer in layers)
    broken = Int8Linear(torch.zeros(8, 4), torch.ones(8), None)  # a float weight where int8 is expected
    with pytest.raises(RuntimeError):
        with LayerPacker(2) as packer:
            packer.pack([broken])
