"""convert_gguf_to_folder on a tiny Qwen2 GGUF written here: the bf16 folder holds the model's weights exactly.

The real conversion (the offline pair) is measured by hand, not here: see the README's first-build memory.
"""

from pathlib import Path

import gguf
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from specdec_lite.models.offline_pair import OfflineModelError, convert_gguf_to_folder
from specdec_lite.models.tiny_models import tiny_model

# llama.cpp's tensor names for a Qwen2 layer's modules, and for the rest
LAYER_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
OTHER_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
               "lm_head.weight": "output.weight"}
TOKENS = ["<eos>", *"abcdefghijklmnopqrstuvwxyz0123456789", "x1", "x2", "x3"]  # 40, byte-level BPE spelling


def gguf_name(name: str) -> str:
    """model.layers.1.self_attn.q_proj.bias -> blk.1.attn_q.bias"""
    if name in OTHER_NAMES:
        return OTHER_NAMES[name]
    _, _, layer, *module, kind = name.split(".")
    return f"blk.{layer}.{LAYER_NAMES['.'.join(module)]}.{kind}"


def write_gguf(model: PreTrainedModel, path: Path, skip: str | None = None) -> Path:
    """`model` (a tiny Qwen2 with len(TOKENS) rows) as a float32 GGUF file, without the tensor `skip`."""
    config, writer = model.config, gguf.GGUFWriter(str(path), "qwen2")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_embedding_length(config.hidden_size)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(TOKENS)
    writer.add_token_types([3] + [1] * (len(TOKENS) - 1))  # 3: control
    writer.add_token_merges(["x 1", "x 2", "x 3"])
    writer.add_eos_token_id(0)
    for name, tensor in model.state_dict().items():
        if name != skip:
            writer.add_tensor(gguf_name(name), tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def model():
    return tiny_model("qwen2", vocab_size=len(TOKENS))


def test_conversion_gives_the_models_weights_in_bf16_with_its_tokenizer(model, tmp_path):
    convert_gguf_to_folder(write_gguf(model, tmp_path / "model.gguf"), tmp_path / "out")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    expected = model.to(torch.bfloat16).state_dict()
    assert loaded.dtype is torch.bfloat16 and loaded.state_dict().keys() == expected.keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    vocab = AutoTokenizer.from_pretrained(tmp_path / "out").get_vocab()
    assert [vocab[token] for token in TOKENS] == list(range(len(TOKENS)))


def test_a_gguf_without_an_output_matrix_gives_a_tied_lm_head(model, tmp_path):
    convert_gguf_to_folder(write_gguf(model, tmp_path / "model.gguf", skip="lm_head.weight"), tmp_path / "out")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert torch.equal(loaded.lm_head.weight, model.model.embed_tokens.weight.to(torch.bfloat16))


def test_a_gguf_missing_a_weight_is_refused_and_nothing_is_written(model, tmp_path):
    gguf_file = write_gguf(model, tmp_path / "model.gguf", skip="model.norm.weight")
    with pytest.raises(OfflineModelError, match=r"has no weights for \['model.norm.weight'\]"):
        convert_gguf_to_folder(gguf_file, tmp_path / "out")
    assert not (tmp_path / "out").exists()
