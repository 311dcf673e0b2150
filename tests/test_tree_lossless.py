"""Token-tree sampling follows the target's distribution: 20,000 end-to-end `tree_generate` runs per setting.

The first two emitted tokens are compared with the target's exact joint p(x1) p(x2 | x1) by a
chi-square test and a total-variation bound (tests/distribution_checks.py). The fast settings
use `TrigramLM` (a lookup-table LM that honours the tree's 4D attention mask and lives in a real
DynamicCache, so drafting, the tree forward and the KV compaction all run as on a transformer);
one slow setting uses a tiny Qwen2 transformer. max_new_tokens = depth + 1 lets the first step
use a full-depth tree; depth <= 2, as nodes deeper than 2 cannot change the first two tokens.
A deliberately biased rule (the longest-branch rule of the first project version: check each branch on its own and
keep the one with the longest accepted prefix) must fail the same test. The rule at one node is also checked by exact
enumeration over every ordered draw of the siblings: its output distribution equals p.
"""

import importlib
import itertools

import pytest
import torch

from distribution_checks import exact_first_two, matches_distribution, trigram_pair
from specdec_lite.algorithm.sampling import sample
from specdec_lite.algorithm.tree import tree_generate
from specdec_lite.algorithm.tree_draft import CostAware
from specdec_lite.algorithm.tree_verification import (TreeVerdict, acceptance_probability, after_rejection,
                                                      children_lists, residual_distribution, without_token)
from specdec_lite.models.pair import ModelPair
from specdec_lite.models.tiny_models import perturbed_copy, tiny_model, tiny_tokenizer

VOCAB, CONTEXT, N_SAMPLES = 16, [3], 20_000  # a one-token prompt: no prefill forwards
tree_module = importlib.import_module("specdec_lite.algorithm.tree")
tree_verification = importlib.import_module("specdec_lite.algorithm.tree_verification")
pytestmark = pytest.mark.statistical


def sampled_first_two(pair, tree: dict, temperature, top_k, top_p, n=N_SAMPLES) -> list:
    """`tree`: tree_generate's shape arguments, depth included."""
    generator = torch.Generator().manual_seed(1234)
    depth = tree["depth"] if "depth" in tree else tree["shape"].depth  # a shape object carries its depth
    samples = []
    for _ in range(n):
        ids = tree_generate(pair, CONTEXT, max_new_tokens=depth + 1, temperature=temperature, top_k=top_k,
                            top_p=top_p, generator=generator, stop_at_eos=False, **tree).token_ids
        samples.append(ids[0] * VOCAB + ids[1])
    return samples


def check(pair, tree: dict, temperature, top_k=0, top_p=1.0, n=N_SAMPLES):
    probs = exact_first_two(pair, CONTEXT, VOCAB, temperature, top_k, top_p)
    samples = sampled_first_two(pair, tree, temperature, top_k, top_p, n)
    return matches_distribution(samples, list(range(VOCAB * VOCAB)), probs)


@pytest.mark.parametrize("n_branches, depth, temperature, top_k, top_p", [
    (2, 2, 1.0, 0, 1.0),
    (3, 2, 0.7, 0, 0.9),
    (4, 1, 1.3, 5, 1.0),
])
def test_tree_sampling_matches_target(n_branches, depth, temperature, top_k, top_p):
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), dict(n_branches=n_branches, depth=depth), temperature,
                                       top_k, top_p)
    assert passes, f"chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


DYNAMIC_SETTINGS = [  # (n_nodes, depth, temperature, top_k, top_p)
    (4, 2, 1.0, 0, 1.0),
    (6, 2, 0.7, 0, 0.9),
    (8, 2, 1.3, 5, 1.0),
]


@pytest.mark.parametrize("n_nodes, depth, temperature, top_k, top_p", DYNAMIC_SETTINGS)
def test_dynamic_tree_sampling_matches_target(n_nodes, depth, temperature, top_k, top_p):
    tree = dict(shape="dynamic", n_nodes=n_nodes, depth=depth)
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), tree, temperature, top_k, top_p)
    print(f"dynamic {tree} T={temperature} top_k={top_k} top_p={top_p}: p={p_value:.3g} TV={tv:.4f} < {bound:.4f}")
    assert passes, f"chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


COST_AWARE = {  # both cut nodes that do not pay their verify cost; see the test below for what each does
    "deep": CostAware(6, 2, c=0.05, verify_costs=tuple(1 + 0.15 * n for n in range(1, 7))),
    "stops": CostAware(6, 2, c=0.3, verify_costs=tuple(1 + 0.1 * n for n in range(1, 7))),
}


def first_tree_sizes(shape: CostAware, temperature: float, top_p: float, n: int = 100) -> set[tuple[int, int]]:
    """(nodes, depth) of the first step's tree over n sampled runs on the test's trigram pair."""
    generator = torch.Generator().manual_seed(0)
    runs = [tree_generate(trigram_pair(VOCAB), CONTEXT, max_new_tokens=3, temperature=temperature, top_p=top_p,
                          generator=generator, stop_at_eos=False, shape=shape).trace[0] for _ in range(n)]
    return {(len(step.tokens) - 1, max(step.depths)) for step in runs}


@pytest.mark.parametrize("name, temperature, top_k, top_p", [("deep", 1.0, 0, 1.0), ("stops", 0.7, 0, 0.9)])
def test_cost_aware_tree_sampling_matches_target(name, temperature, top_k, top_p):
    sizes = first_tree_sizes(COST_AWARE[name], temperature, top_p)
    assert all(nodes < 6 for nodes, _ in sizes)  # the cut is exercised ...
    assert {depth for _, depth in sizes} == ({2} if name == "deep" else {1})  # ... and the depth rule
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), dict(shape=COST_AWARE[name]), temperature, top_k, top_p)
    print(f"cost-aware {name} {sorted(sizes)} T={temperature} top_p={top_p}: p={p_value:.3g} TV={tv:.4f} < {bound:.4f}")
    assert passes, f"chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


def keep_q_after_rejection(p: torch.Tensor, q: torch.Tensor, token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The control: SpecInfer's rule for siblings drawn WITH replacement, q left as it was."""
    return residual_distribution(p, q), q


def test_dynamic_tree_keeping_q_after_a_rejection_fails_the_same_test(monkeypatch):
    monkeypatch.setattr(tree_verification, "after_rejection", keep_q_after_rejection)
    n_nodes, depth, temperature, top_k, top_p = DYNAMIC_SETTINGS[2]  # at T = 0.7, top-p 0.9 a sibling seldom matters
    tree = dict(shape="dynamic", n_nodes=n_nodes, depth=depth)
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), tree, temperature, top_k, top_p)
    print(f"control (q kept) {tree} T={temperature} top_k={top_k}: p={p_value:.3g} TV={tv:.4f} (bound {bound:.4f})")
    assert not passes, f"the kept-q rule passed: chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


def branch_nodes(children: list[list[int]], first: int) -> list[int]:
    """The chain of nodes from `first` down (each drafted node has at most one child)."""
    nodes = [first]
    while children[nodes[-1]]:
        nodes.append(children[nodes[-1]][0])
    return nodes


def longest_branch_verify(tree, q, logits, sampling):
    """The longest-branch rule (the first project version's), biased: check each branch alone with the chain rule,
    keep the longest accepted prefix."""
    p, generator = sampling.probs(logits), sampling.generator
    tokens, children = tree.tokens.tolist(), children_lists(tree)
    best: list[int] = []
    for first in children[0]:
        parent, path = 0, []
        for node in branch_nodes(children, first):
            if torch.rand((), generator=generator) >= acceptance_probability(p[parent][tokens[node]],
                                                                             q[parent][tokens[node]]):
                break
            parent = node
            path.append(node)
        best = path if len(path) > len(best) else best
    last = best[-1] if best else 0
    if children[last]:  # a rejection ended the chosen branch
        return TreeVerdict(best, int(sample(residual_distribution(p[last], q[last]), generator)), True)
    return TreeVerdict(best, int(sample(p[last], generator)), False)


def test_biased_rule_fails_the_same_test(monkeypatch):
    monkeypatch.setattr(tree_module, "verify_tree", longest_branch_verify)
    passes, p_value, tv, bound = check(trigram_pair(VOCAB), dict(n_branches=3, depth=2), 0.7, 0, 0.9)
    assert not passes, f"the biased rule passed: chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"


def ordered_draws(q: torch.Tensor, n: int):
    """Every ordered draw of min(n, support) tokens without replacement from q, with its probability."""
    support = q.nonzero().flatten().tolist()
    for draws in itertools.permutations(support, min(n, len(support))):
        draw_q, prob_draws = q, 1.0
        for token in draws:
            prob_draws *= float(draw_q[token])
            draw_q = without_token(draw_q, token)
        yield draws, prob_draws


def sibling_rule_distribution(p: torch.Tensor, q: torch.Tensor, n: int, update_q: bool = True) -> torch.Tensor:
    """Exact output distribution at one node: n siblings drawn without replacement from q, then the rule.

    Enumerates every ordered draw; `update_q=False` is SpecInfer's rule for draws WITH replacement.
    """
    out = torch.zeros_like(p)
    for draws, prob_draws in ordered_draws(q, n):
        p_i, q_i, reach = p, q, prob_draws
        for token in draws:
            accept = float(acceptance_probability(p_i[token], q_i[token]))
            out[token] += reach * accept
            reach *= 1 - accept
            p_i, q_next = after_rejection(p_i, q_i, token)
            q_i = q_next if update_q else q_i
        out += reach * p_i
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_sibling_rule_is_exact_by_enumeration(n):
    generator = torch.Generator().manual_seed(n)
    for _ in range(5):
        p = torch.softmax(2 * torch.randn(6, generator=generator, dtype=torch.float64), -1)
        q = torch.softmax(2 * torch.randn(6, generator=generator, dtype=torch.float64), -1)
        q[int(torch.randint(6, (), generator=generator))] = 0  # a token the draft never proposes
        q /= q.sum()
        assert (sibling_rule_distribution(p, q, n) - p).abs().max() < 1e-9


def tree_rule_first_two(p_of, q_of, n_children, vocab: int, update_q: bool = True,
                        keep=lambda token: True) -> torch.Tensor:
    """Exact joint [vocab, vocab] of the first two tokens a two-level tree step (then a plain step) emits.

    p_of, q_of: prefix (tuple of drafted tokens) -> [vocab]; n_children: prefix -> how many children
    are drawn there. The root's drawn children failing `keep` are pruned before verification (a
    shape that looks at a node's own token). After an accepted root child x the second token comes
    from the rule at x; after a resample it comes from the target's next step, p_of((x,)).
    """
    out = torch.zeros(vocab, vocab, dtype=torch.float64)
    next_p = torch.stack([p_of((x,)) for x in range(vocab)])  # [vocab, vocab]
    for draws, prob_draws in ordered_draws(q_of(()), n_children(())):
        p_i, q_i, reach = p_of(()), q_of(()), prob_draws
        for x in [token for token in draws if keep(token)]:
            accept = float(acceptance_probability(p_i[x], q_i[x]))
            out[x] += reach * accept * sibling_rule_distribution(p_of((x,)), q_of((x,)), n_children((x,)), update_q)
            reach *= 1 - accept
            p_i, q_next = after_rejection(p_i, q_i, x)
            q_i = q_next if update_q else q_i
        out += reach * p_i[:, None] * next_p
    return out


def random_tables(seed: int, vocab: int = 5):
    generator = torch.Generator().manual_seed(seed)
    p_table, q_table = (torch.softmax(2 * torch.randn(vocab + 1, vocab, generator=generator, dtype=torch.float64), -1)
                        for _ in range(2))
    return (lambda prefix: p_table[prefix[-1] if prefix else vocab]), (lambda prefix: q_table[prefix[-1] if prefix
                                                                                              else vocab])


def n_children_by_parent(prefix: tuple) -> int:
    """3 children under the root; under a drafted node x, x % 3 of them (0: a leaf): a shape set by the ancestors."""
    return 3 if not prefix else prefix[-1] % 3


@pytest.mark.parametrize("seed", range(4))
def test_the_rule_is_exact_on_a_two_level_tree_by_enumeration(seed):
    p_of, q_of = random_tables(seed)
    exact = p_of(())[:, None] * torch.stack([p_of((x,)) for x in range(5)])
    assert (tree_rule_first_two(p_of, q_of, n_children_by_parent, 5) - exact).abs().max() < 1e-9


def test_two_level_tree_controls_are_not_exact():
    """Keeping q after a sibling rejection, or pruning drawn children by their own token, biases the output."""
    p_of, q_of = random_tables(1)
    exact = p_of(())[:, None] * torch.stack([p_of((x,)) for x in range(5)])
    kept_q = tree_rule_first_two(p_of, q_of, n_children_by_parent, 5, update_q=False)
    by_own_q = tree_rule_first_two(p_of, q_of, n_children_by_parent, 5, keep=lambda x: q_of(())[x] > 0.1)
    assert (kept_q - exact).abs().max() > 1e-3 and (by_own_q - exact).abs().max() > 1e-3


def test_keeping_q_after_a_rejection_is_not_exact():
    generator = torch.Generator().manual_seed(0)
    p = torch.softmax(2 * torch.randn(6, generator=generator, dtype=torch.float64), -1)
    q = torch.softmax(2 * torch.randn(6, generator=generator, dtype=torch.float64), -1)
    assert (sibling_rule_distribution(p, q, 3, update_q=False) - p).abs().max() > 1e-2


@pytest.mark.slow
def test_tree_sampling_matches_target_on_a_transformer():
    target = tiny_model("qwen2", seed=3, vocab_size=VOCAB, layers=1, hidden=16)
    target.config.eos_token_id = target.generation_config.eos_token_id = None
    pair = ModelPair(perturbed_copy(target, 0.3, seed=4), target, tiny_tokenizer(VOCAB), torch.float32,
                     torch.device("cpu"))
    passes, p_value, tv, bound = check(pair, dict(n_branches=2, depth=2), 1.0, 0, 0.95)
    assert passes, f"chi-square p={p_value:.2e}, TV={tv:.4f} (bound {bound:.4f})"
