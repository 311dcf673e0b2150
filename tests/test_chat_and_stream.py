"""Chat prompts (a list of messages through the chat template) and streaming (`on_step`) on tiny pairs."""

import pytest

from specdec_lite import autoregressive_generate, speculative_generate, tree_generate
from specdec_lite.algorithm.draft_length import HeuristicK
from specdec_lite.algorithm.inputs import prompt_ids
from specdec_lite.algorithm.results import EosCut, PlainStep
from specdec_lite.models.tiny_models import tiny_pair
from specdec_lite.tools.trace_view import ANSI, stream_text

# each message's content and a full stop; the opened assistant turn is a space (all in the tiny alphabet)
TEMPLATE = "{% for m in messages %}{{ m['content'] }}.{% endfor %}{% if add_generation_prompt %} {% endif %}"
CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.fixture
def chat_pair():
    pair = tiny_pair("qwen2")
    pair.tokenizer.chat_template = TEMPLATE
    return pair


def test_chat_prompt_is_the_template_with_the_assistant_turn_opened(chat_pair):
    assert prompt_ids(chat_pair, CHAT).tolist() == chat_pair.encode("be brief.hi. ").tolist()


@pytest.mark.parametrize("generate", [autoregressive_generate, speculative_generate, tree_generate])
def test_every_generate_function_takes_a_chat(generate, chat_pair):
    from_chat = generate(chat_pair, CHAT, max_new_tokens=10, stop_at_eos=False)
    from_text = generate(chat_pair, "be brief.hi. ", max_new_tokens=10, stop_at_eos=False)
    assert from_chat.token_ids == from_text.token_ids
    assert from_chat.prompt_ids == from_text.prompt_ids


def test_chat_without_a_template_or_with_bad_messages_is_refused():
    pair = tiny_pair("gpt2")
    with pytest.raises(ValueError, match="prompt is a list of chat messages, but the tokenizer has no chat template"):
        speculative_generate(pair, CHAT)
    pair.tokenizer.chat_template = TEMPLATE
    with pytest.raises(ValueError, match="prompt messages must be"):
        speculative_generate(pair, [{"role": "user", "text": "hi"}])


def streamed(generate, pair, **options):
    calls = []
    result = generate(pair, "hello", on_step=lambda tokens, step: calls.append((tokens, step)), **options)
    return calls, result


@pytest.mark.parametrize("generate, options", [
    (speculative_generate, dict(k=3)), (speculative_generate, dict(k=HeuristicK(), temperature=1.0, seed=2)),
    (tree_generate, dict()), (tree_generate, dict(temperature=0.8, seed=5)),
])
def test_streamed_tokens_join_to_the_result(generate, options):
    calls, result = streamed(generate, tiny_pair("gpt2", noise=0.3), max_new_tokens=30, stop_at_eos=False,
                             **options)
    assert [token for tokens, _ in calls for token in tokens] == result.token_ids
    assert [step for _, step in calls] == [step for step in result.trace if not isinstance(step, EosCut)]
    assert all(tokens == step.emitted for tokens, step in calls)  # no EOS stop: every step emitted whole


def test_streaming_stops_at_the_eos_cut():
    pair = tiny_pair("gpt2", noise=0.3)
    for seed in range(20):  # find a sampled run that ends with an EOS (id 0 in the tiny vocabulary)
        calls, result = streamed(speculative_generate, pair, max_new_tokens=60, k=4, temperature=1.0, seed=seed)
        if result.trace and isinstance(result.trace[-1], EosCut):
            break
    else:
        pytest.fail("no run of 20 ended with an EOS")
    assert [token for tokens, _ in calls for token in tokens] == result.token_ids
    assert calls[-1][0] == calls[-1][1].emitted[: result.trace[-1].kept] and result.token_ids[-1] == 0


def test_stream_text_colours_each_emitted_token_by_role():
    calls, _ = streamed(speculative_generate, tiny_pair("gpt2", noise=0.3), max_new_tokens=20, k=3,
                        stop_at_eos=False)
    decode = str  # token id -> its digits, so that the text shows which tokens were printed
    for tokens, step in calls:
        assert stream_text(tokens, step, decode) == "".join(map(str, tokens))
        coloured = stream_text(tokens, step, decode, color=True)
        if isinstance(step, PlainStep):  # the run's last token can come from the target alone
            assert coloured == f"\x1b[{ANSI['target']}m{tokens[0]}\x1b[0m"
            continue
        last_role = "bonus" if step.is_bonus else "correction"
        assert coloured.count(f"\x1b[{ANSI['accepted']}m") == step.n_accepted
        assert coloured.endswith(f"\x1b[{ANSI[last_role]}m{tokens[-1]}\x1b[0m")
