"""On the real offline pair in int8 (the default on an x86 CPU): speculative greedy,
chain and tree, equals plain int8 greedy token for token, because the int8 rows never interact."""

import pytest

from specdec_lite import autoregressive_generate, load_pair, speculative_generate, tree_generate
from specdec_lite.tools.bench import encode_prompt, select_prompts

pytestmark = pytest.mark.slow
MAX_NEW = 32


@pytest.fixture(scope="module")
def pair():
    pair = load_pair(dtype="int8", device="cpu")
    yield pair
    pair.release()  # ~5 GB: free it before the next module (or an nbval kernel) loads another copy


@pytest.mark.parametrize("name", ["fibonacci", "lighthouse"])
def test_int8_speculative_greedy_is_int8_plain_greedy(pair, name):
    ids = encode_prompt(pair, select_prompts(name)[0]["text"])
    plain = autoregressive_generate(pair, ids, MAX_NEW).token_ids
    for k in (3, 6):
        assert speculative_generate(pair, ids, MAX_NEW, k=k).token_ids == plain
    assert tree_generate(pair, ids, MAX_NEW, shape="dynamic", n_nodes=8, depth=6).token_ids == plain
