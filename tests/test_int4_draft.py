"""An int4 draft (int4_draft.py): its linears compute what their 4-bit weights say, the whole draft converts and
keeps the one-function layer, and the output stays the int8 target's, token for token (the draft only proposes)."""

import pytest
import torch
from torch import nn

from specdec_lite import autoregressive_generate, load_pair, speculative_generate, tree_generate
from specdec_lite.algorithm import theory
from specdec_lite.models import int8_layer
from specdec_lite.models.int4_draft import Int4Linear, dequantize_int4, is_int4, quantize_int4, to_int4
from specdec_lite.models.pair import weight_bytes
from specdec_lite.models.quantize import Int8Linear
from specdec_lite.models.tiny_models import tiny_int8_pair, tiny_pair

ARCHS = ["gpt2", "qwen2", "llama"]
GROUP = 32  # the tiny models are 32 wide (what to_int4 picks for them)


@pytest.mark.parametrize("group_size", [32, 64])
def test_codes_round_every_weight_to_the_nearest_of_16_levels_in_its_group(group_size):
    torch.manual_seed(0)
    weight = torch.randn(48, 128)
    codes, scales_and_zeros = quantize_int4(weight, group_size)
    assert codes.min() >= 0 and codes.max() <= 15 and scales_and_zeros.shape == (128 // group_size, 48, 2)
    step = scales_and_zeros[..., 0].t().repeat_interleave(group_size, dim=1)  # [48, 128]: each weight's group scale
    error = (dequantize_int4(codes, scales_and_zeros) - weight).abs()
    assert (error <= step / 2 + 1e-6).all()  # nearest level
    assert (error > step / 8).any()  # the control: 16 levels do not represent random weights exactly


def test_int4_linear_computes_its_dequantized_weights_in_bf16():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    layer = Int4Linear(linear.weight, linear.bias, group_size=GROUP)
    x = torch.randn(5, 64)
    exact = x @ dequantize_int4(*quantize_int4(linear.weight, GROUP)).t() + linear.bias
    relative = ((layer(x) - exact).norm(dim=-1) / exact.norm(dim=-1)).max()
    assert relative < 0.02  # bf16 activations: about 3 significant digits
    assert layer(x).dtype == torch.float32 and layer(x[None]).shape == (1, 5, 32)


def test_bad_sizes_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="group_size must divide"):
        Int4Linear(torch.randn(32, 48), None, group_size=32)
    with pytest.raises(ValueError, match="multiple of 16"):
        Int4Linear(torch.randn(40, 64), None, group_size=32)
    with pytest.raises(ValueError, match="dtype='int8' first"):
        to_int4(tiny_pair("qwen2").draft, GROUP)  # float linears: nothing to convert
    with pytest.raises(ValueError, match="int4_draft=True needs dtype='int8'"):
        load_pair(draft="unused", target="unused", dtype="float32", int4_draft=True)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_whole_draft_converts_and_keeps_the_one_function_layer(arch):
    pair = tiny_int8_pair(arch)
    int8_bytes = weight_bytes(pair.draft)
    n_int8 = sum(isinstance(m, Int8Linear) for m in pair.draft.modules())
    served = sum(int8_layer.can_serve(m) for m in pair.draft.modules())
    assert to_int4(pair.draft) == n_int8 and is_int4(pair.draft) and not is_int4(pair.target)
    assert {m.group_size for m in pair.draft.modules() if isinstance(m, Int4Linear)} == {GROUP}
    assert not any(isinstance(m, Int8Linear) for m in pair.draft.modules())
    assert sum(int8_layer.can_serve(m) for m in pair.draft.modules()) == served  # 0 for gpt2
    assert weight_bytes(pair.draft) < 0.75 * int8_bytes  # 4 bits a weight, plus a scale and an offset per group


@pytest.mark.parametrize("arch", ARCHS)
def test_an_int4_draft_leaves_the_int8_targets_tokens_unchanged(arch):
    pair = tiny_int8_pair(arch)
    prompt = torch.tensor([[1, 5, 9, 2, 7]])
    plain = autoregressive_generate(pair, prompt, 24).token_ids
    to_int4(pair.draft, GROUP)
    chain = speculative_generate(pair, prompt, 24, k=4)
    for result in (chain, tree_generate(pair, prompt, 24, shape="dynamic", n_nodes=6)):
        assert result.token_ids == plain
        assert result.stats.accepted > 0  # the int4 draft's guesses do get accepted


def test_an_int4_draft_gets_its_own_calibration():
    pair = tiny_int8_pair("qwen2")
    pair.draft.config.name_or_path, pair.target.config.name_or_path = "tiny-draft", "tiny-target"
    before = theory.calibration_key(pair)
    to_int4(pair.draft, GROUP)
    assert theory.calibration_key(pair) not in (None, before)


ACCEPTANCE_PROMPT = "Write a Python function that returns the n-th Fibonacci number."
# greedy accepted/proposed, K=4, 24 tokens, int8 target: 17/25 = 0.68 with the int4 draft and 17/25 with the
# int8 draft (2026-12-06, AMD EPYC AVX-512); the floor leaves two tokens of margin for another CPU's rounding.
ACCEPTANCE_FLOOR = 0.60


@pytest.fixture(scope="module")
def offline_int4():
    pair = load_pair(dtype="int8", device="cpu", int4_draft=True)
    yield pair
    pair.release()


@pytest.mark.slow
def test_the_offline_pairs_int4_draft_keeps_the_tokens_and_its_acceptance(offline_int4):
    pair = offline_int4
    assert is_int4(pair.draft) and pair.dtype == torch.int8
    messages = [{"role": "user", "content": ACCEPTANCE_PROMPT}]
    text = pair.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    plain = autoregressive_generate(pair, text, 24, stop_at_eos=False).token_ids
    result = speculative_generate(pair, text, 24, k=4, stop_at_eos=False)
    assert result.token_ids == plain
    assert result.stats.acceptance_rate >= ACCEPTANCE_FLOOR, (
        f"acceptance {result.stats.accepted}/{result.stats.proposed} fell below {ACCEPTANCE_FLOOR}")
