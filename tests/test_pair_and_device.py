"""pick_device's overrides; load_pair's real from_pretrained path on saved tiny pairs (slow: the offline pair)."""

import pytest
import torch
from transformers import GPT2LMHeadModel, Qwen2ForCausalLM

from specdec_lite import autoregressive_generate, load_pair, pick_device, speculative_generate, tree_generate
from specdec_lite.algorithm.theory import position_acceptance
from specdec_lite.models.device import DEVICE_ENV_VAR
from specdec_lite.models.pair import ModelPair, resolve_dtype
from specdec_lite.models.tiny_models import TINY_ALPHABET, TINY_VOCAB, save_tiny_pair, tiny_model, tiny_tokenizer

QWEN_VOCAB = 151_936


@pytest.fixture
def no_device_env(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)


def test_pick_device_prefers_cuda_then_mps_then_cpu(no_device_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


def test_argument_overrides_env_var_which_overrides_the_default(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert pick_device() == torch.device("cpu")
    assert pick_device("mps") == torch.device("mps")
    assert pick_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    monkeypatch.setenv(DEVICE_ENV_VAR, "")  # empty means unset
    assert pick_device() == torch.device("cuda")


@pytest.mark.parametrize("bad", ["tpu", "meta", "banana", "cuda:x", ""])
def test_bad_device_argument_is_a_value_error(bad, no_device_env):
    with pytest.raises(ValueError, match=r"device must be one of \('cpu', 'cuda', 'mps'\)"):
        pick_device(bad)


def test_bad_env_var_is_a_value_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=rf"\${DEVICE_ENV_VAR} must be one of .*'gpu'"):
        pick_device()


@pytest.mark.parametrize("name, expected", [("bfloat16", torch.bfloat16), ("bf16", torch.bfloat16),
                                            ("float32", torch.float32), ("fp32", torch.float32),
                                            ("float16", torch.float16), ("int8", torch.int8),
                                            (torch.float32, torch.float32)])
def test_dtype_names(name, expected):
    assert resolve_dtype(name) is expected


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("int4")


@pytest.mark.parametrize("arch, model_class", [("gpt2", GPT2LMHeadModel), ("qwen2", Qwen2ForCausalLM)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_load_pair_from_saved_folders(arch, model_class, dtype, tmp_path):
    draft_dir, target_dir = save_tiny_pair(tmp_path, arch=arch)
    pair = load_pair(draft=draft_dir, target=str(target_dir), dtype=dtype, device="cpu")
    assert isinstance(pair.draft, model_class) and isinstance(pair.target, model_class)
    assert pair.draft.config.num_hidden_layers == 1 and pair.target.config.num_hidden_layers == 2
    assert pair.dtype is resolve_dtype(dtype) and pair.device == torch.device("cpu")
    for model in (pair.draft, pair.target):
        assert next(model.parameters()).dtype is pair.dtype and not model.training
        assert model.get_output_embeddings().weight.shape[0] == TINY_VOCAB
    ids = pair.encode("hello")
    assert ids.shape == (1, 5) and pair.decode(ids[0]) == "hello"


def test_vocabulary_mismatch_is_refused(tmp_path):
    draft_dir, target_dir = save_tiny_pair(tmp_path, draft_vocab=20, target_vocab=TINY_VOCAB)
    with pytest.raises(ValueError, match="must share a vocabulary.* 20 tokens.* 32"):
        load_pair(draft=draft_dir, target=target_dir, device="cpu")


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_padded_pair_loads_and_generates_the_target_greedy_tokens(arch, tmp_path):
    # one tokenizer, embeddings padded differently (as Qwen2.5 0.5B: 151,936 rows vs 7B: 152,064)
    draft_dir, target_dir = save_tiny_pair(tmp_path, arch=arch, draft_rows=TINY_VOCAB + 8,
                                           target_rows=TINY_VOCAB + 16)
    pair = load_pair(draft=draft_dir, target=target_dir, dtype="float32", device="cpu")
    assert pair.target(input_ids=pair.encode("hello")).logits.shape == (1, 5, TINY_VOCAB)
    reference = autoregressive_generate(pair, "hello", max_new_tokens=24, stop_at_eos=False).token_ids
    for k in (1, 4):
        assert speculative_generate(pair, "hello", max_new_tokens=24, k=k, stop_at_eos=False).token_ids == reference
    assert tree_generate(pair, "hello", max_new_tokens=24, stop_at_eos=False).token_ids == reference
    sampled = speculative_generate(pair, "hello", max_new_tokens=24, temperature=1.0, stop_at_eos=False)
    assert max(sampled.token_ids) < TINY_VOCAB
    acceptance = position_acceptance(pair, "hello", max_new_tokens=8)  # theory: p and q over the same columns
    assert acceptance.shape == (8,) and 0 <= float(acceptance.min()) <= float(acceptance.max()) <= 1


def test_padded_pair_releases_its_logit_hooks():
    target = tiny_model("qwen2", vocab_size=TINY_VOCAB + 16)
    pair = ModelPair.from_models(tiny_model("qwen2", seed=1, vocab_size=TINY_VOCAB + 8), target, tiny_tokenizer())
    pair.release()
    assert target(input_ids=torch.tensor([[1, 2]])).logits.shape[-1] == TINY_VOCAB + 16


def test_tokenizers_with_other_ids_are_refused_naming_both_models(tmp_path):
    draft_dir, target_dir = save_tiny_pair(tmp_path, draft_alphabet=TINY_ALPHABET[::-1])
    with pytest.raises(ValueError, match=f"must share a vocabulary: the draft {draft_dir} has 32 tokens, "
                                         f"the target {target_dir} has 32 \\(30 of the draft's tokens"):
        load_pair(draft=draft_dir, target=target_dir, device="cpu")


def test_identical_tokenizer_files_are_recognised_and_others_are_not(tmp_path):
    from specdec_lite.models.pair import same_tokenizer_files

    draft_dir, target_dir = save_tiny_pair(tmp_path / "same")
    assert same_tokenizer_files(draft_dir, target_dir)  # load_pair skips loading the draft's tokenizer
    other_draft, other_target = save_tiny_pair(tmp_path / "other", draft_alphabet=TINY_ALPHABET[::-1])
    assert not same_tokenizer_files(other_draft, other_target)  # so load_pair compares the vocabularies
    assert not same_tokenizer_files("distilgpt2", "gpt2")  # hub ids: nothing local to compare


def test_from_models_builds_a_checked_pair_from_loaded_models():
    draft, target = tiny_model("gpt2", seed=1), tiny_model("gpt2", seed=2)
    pair = ModelPair.from_models(draft, target, tiny_tokenizer(), draft_tokenizer=tiny_tokenizer())
    assert (pair.draft, pair.target, pair.dtype, pair.device) == (draft, target, torch.float32, torch.device("cpu"))
    assert not pair.hooks  # same rows: the logits are left as they are
    with pytest.raises(ValueError, match="must share a vocabulary: the draft GPT2LMHeadModel has 20 tokens, the target GPT2LMHeadModel"):
        ModelPair.from_models(draft, target, tiny_tokenizer(), draft_tokenizer=tiny_tokenizer(20))
    with pytest.raises(ValueError, match="an output row for each of the tokenizer's 32 tokens"):
        ModelPair.from_models(tiny_model("gpt2", vocab_size=20), target, tiny_tokenizer())


def test_load_pair_takes_keyword_arguments_only(tmp_path):
    with pytest.raises(TypeError):
        load_pair(tmp_path / "draft", tmp_path / "target")


@pytest.mark.parametrize("given", [{"draft": "somewhere"}, {"target": "somewhere"}])
def test_draft_and_target_come_together(given):
    with pytest.raises(ValueError, match="draft and target must be given together"):
        load_pair(**given)


def test_bad_dtype_or_device_is_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_pair(draft=tmp_path / "no_draft", target=tmp_path / "no_target", dtype="double")
    with pytest.raises(ValueError, match="device must be one of"):
        load_pair(draft=tmp_path / "no_draft", target=tmp_path / "no_target", device="tpu")


@pytest.fixture(scope="module")
def offline_pair():
    pair = load_pair(dtype="bfloat16", device="cpu")
    yield pair
    pair.release()


@pytest.mark.slow
def test_offline_pair_loads_both_qwen_models_with_one_vocabulary(offline_pair):
    assert offline_pair.draft.config.model_type == offline_pair.target.config.model_type == "qwen2"
    assert offline_pair.draft.get_output_embeddings().weight.shape[0] == QWEN_VOCAB
    assert offline_pair.target.get_output_embeddings().weight.shape[0] == QWEN_VOCAB
    assert offline_pair.draft.num_parameters() < offline_pair.target.num_parameters()
    assert offline_pair.decode(offline_pair.encode("def add(a, b):")[0]) == "def add(a, b):"


def test_auto_dtype_follows_the_environment_variable(monkeypatch):
    from specdec_lite.models.pair import DTYPE_ENV_VAR

    monkeypatch.setenv(DTYPE_ENV_VAR, "float32")
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    monkeypatch.setenv(DTYPE_ENV_VAR, "int3")
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("auto", torch.device("cpu"))


def test_loading_bars_are_off_inside_and_restored_after():
    from transformers.utils import logging as hf_logging

    from specdec_lite.models.pair import no_loading_bars

    hf_logging.enable_progress_bar()
    with no_loading_bars():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    with no_loading_bars():
        pass
    assert not hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
