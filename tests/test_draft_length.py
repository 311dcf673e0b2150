"""Adaptive draft length (HeuristicK) and the draft-confidence stop keep greedy output exact (fp32, tiny pairs)."""

import json

import pytest
import torch

from specdec_lite.algorithm.autoregressive import autoregressive_generate
from specdec_lite.algorithm.chain import speculative_generate
from specdec_lite.algorithm.draft import DraftStop, confidence, propose
from specdec_lite.algorithm.draft_length import FixedK, HeuristicK, draft_length_policy
from specdec_lite.algorithm.kv_cache import cache_length, new_cache
from specdec_lite.algorithm.results import StepTrace
from specdec_lite.algorithm.theory import calibration_path as REAL_CALIBRATION_PATH  # imported before conftest's patch
from specdec_lite.models.tiny_models import tiny_pair

PROMPTS = ["a", "hello", "the cat sat", "zzz", "why not?", "abc abc abc", "on the mat.", "q", "it is, it was",
           "lorem ipsum", "x y z", "speculative", "draft and target", "one, two", "seven!", "hm"]


@pytest.fixture(scope="module", params=["gpt2", "qwen2"])
def pair(request):
    return tiny_pair(request.param, noise=0.08)


def test_heuristic_k_schedule():
    policy = HeuristicK(k=4, k_min=2, k_max=7)
    ks = []
    for n_accepted, n_proposed in [(4, 4), (6, 6), (3, 7), (0, 6), (0, 5), (0, 4), (1, 3), (2, 2)]:
        policy.update(n_accepted, n_proposed)
        ks.append(policy.next_k())
    assert ks == [6, 7, 6, 5, 4, 3, 2, 4]
    assert draft_length_policy(3) == FixedK(3)
    with pytest.raises(ValueError, match="k_min"):
        HeuristicK(k=1, k_min=2)


@pytest.mark.parametrize("start_k", [1, 3, 6])
def test_heuristic_k_is_greedy_exact(pair, start_k):
    for prompt in PROMPTS:
        plain = autoregressive_generate(pair, prompt, 24).token_ids
        result = speculative_generate(pair, prompt, 24, k=HeuristicK(k=start_k, k_max=10))
        assert result.token_ids == plain, prompt
        assert result.stats.accepted <= result.stats.proposed


def test_heuristic_k_follows_its_schedule_in_the_loop(pair):
    result = speculative_generate(pair, "the cat sat", 40, k=HeuristicK(k=2, k_max=8), stop_at_eos=False)
    expected = HeuristicK(k=2, k_max=8)
    emitted = 0
    drafted = [step for step in result.trace if isinstance(step, StepTrace)]
    for step in drafted:
        remaining = 40 - emitted
        assert len(step.proposed) == min(expected.next_k(), remaining - 1)  # never past max_new_tokens
        expected.update(step.n_accepted, len(step.proposed))
        emitted += len(step.emitted)
    assert len({len(step.proposed) for step in drafted}) > 1  # K did change


@pytest.mark.parametrize("k, threshold", [(2, 0.3), (4, 0.6), (8, 0.9), (8, 0.999)])
def test_confidence_stop_is_greedy_exact(pair, k, threshold):
    for prompt in PROMPTS:
        plain = autoregressive_generate(pair, prompt, 24).token_ids
        result = speculative_generate(pair, prompt, 24, k=k, min_confidence=threshold)
        assert result.token_ids == plain, prompt
        assert all(1 <= len(step.proposed) <= k for step in result.trace if isinstance(step, StepTrace))


def test_confidence_stop_shortens_drafts(pair):
    lengths = {}
    for threshold in (0.0, 0.999):
        result = speculative_generate(pair, "hello", 30, k=6, min_confidence=threshold, stop_at_eos=False)
        lengths[threshold] = [len(step.proposed) for step in result.trace if isinstance(step, StepTrace)]
    assert lengths[0.0][:2] == [6, 6]  # without the stop, every step drafts K (until max_new_tokens nears)
    mean = {threshold: sum(ks) / len(ks) for threshold, ks in lengths.items()}
    assert mean[0.999] < mean[0.0]  # some drafts stopped early


def test_confidence_stop_proposes_the_unsure_token_and_pays_no_extra_forward(pair):
    lengths = []
    for prompt in PROMPTS:
        ids, cache = pair.encode(prompt), new_cache(pair.draft)
        proposal = propose(pair.draft, cache, ids, DraftStop(6, min_confidence=0.3))
        n = len(proposal.tokens)
        assert proposal.forwards == n and cache_length(cache) == ids.shape[1] + n - 1  # the last token is not fed
        full = pair.draft(torch.cat([ids[0], proposal.tokens])[None]).logits[0, ids.shape[1] - 1: -1]  # [n, vocab]
        tops = full.softmax(-1).max(-1).values.tolist()  # the draft's confidence at each proposed position
        assert all(top >= 0.3 for top in tops[:-1]), prompt  # drafting went on only after confident tokens
        assert n == 6 or tops[-1] < 0.3, prompt  # it stopped after the first unsure one, which it still proposed
        lengths.append(n)
    assert len(set(lengths)) > 1, lengths  # the stop did cut some drafts and not others


@pytest.mark.parametrize("stop, name", [(dict(k=0), "k must be >= 1"),
                                        (dict(k=3, min_confidence=1.5), "min_confidence must be in"),
                                        (dict(k=3, min_confidence=-0.1), "min_confidence must be in")])
def test_bad_draft_stop_names_the_argument(stop, name):
    with pytest.raises(ValueError, match=name):
        DraftStop(**stop)


def test_an_int_stop_is_k_without_a_confidence_stop(pair):
    ids = pair.encode(PROMPTS[0])
    as_int, as_stop = (propose(pair.draft, new_cache(pair.draft), ids, stop) for stop in (5, DraftStop(5)))
    assert len(as_int.tokens) == 5 and torch.equal(as_int.tokens, as_stop.tokens)


def test_heuristic_k_with_confidence_stop_is_greedy_exact_and_sampling_is_seeded(pair):
    for prompt in PROMPTS[:8]:
        plain = autoregressive_generate(pair, prompt, 20).token_ids
        assert speculative_generate(pair, prompt, 20, k=HeuristicK(), min_confidence=0.5).token_ids == plain
    sampled = [speculative_generate(pair, "hello", 20, k=HeuristicK(), min_confidence=0.5, temperature=0.8,
                                    seed=7).token_ids for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_greedy_confidence_is_the_softmax_top_probability():
    logits = torch.tensor([2.0, 1.0, 0.0])
    one_hot = torch.tensor([1.0, 0.0, 0.0])
    assert confidence(logits, one_hot, 0.0) == pytest.approx(float(logits.softmax(-1).max()))
    q = torch.tensor([0.5, 0.3, 0.2])
    assert confidence(logits, q, 1.0) == pytest.approx(0.5)


def test_cost_aware_k_follows_the_formula_and_the_running_alpha():
    from specdec_lite.algorithm.draft_length import CostAwareK
    from specdec_lite.algorithm.theory import best_k

    costs = [1.05, 1.1, 1.2, 1.35, 1.5, 1.7, 1.8, 2.0]  # v_1..v_8, an int8-like verification
    policy = CostAwareK(c=0.3, verify_costs=costs, prior_alpha=0.7)
    start = policy.next_k()
    assert start == best_k(0.7, 0.3, 8, costs)
    for _ in range(20):  # every draft accepted: alpha rises, K grows
        policy.update(policy.next_k(), policy.next_k())
    assert policy.alpha > 0.95 and policy.next_k() == best_k(min(policy.alpha, 0.999), 0.3, 8, costs) > start
    for _ in range(50):  # the first draft rejected every step: alpha falls, K shrinks to 1
        policy.update(0, policy.next_k())
    assert policy.alpha < 0.3 and policy.next_k() == 1


def test_cost_aware_k_smooths_away_cost_dips_below_one_and_below_shorter_forwards():
    from specdec_lite.algorithm.draft_length import CostAwareK, monotone_costs

    assert monotone_costs([0.87, 1.06, 1.28, 1.25, 1.4]) == [1.0, 1.06, 1.28, 1.28, 1.4]
    measured = [0.867, 1.062, 1.283, 1.399]  # a calibration of the offline int8 pair: v_1 dipped below 1
    assert CostAwareK(c=0.506, verify_costs=measured, prior_alpha=0.94).next_k() == 2  # the raw costs say K = 1


def test_cost_aware_k_rejects_bad_costs():
    from specdec_lite.algorithm.draft_length import CostAwareK

    with pytest.raises(ValueError, match="c >= 0"):
        CostAwareK(c=-1, verify_costs=[1.0])
    with pytest.raises(ValueError, match="positive verify_costs"):
        CostAwareK(c=0.3, verify_costs=[])


def test_k_auto_calibrates_the_pair_and_stays_exact(monkeypatch, tmp_path):
    from specdec_lite import autoregressive_generate, speculative_generate
    from specdec_lite.algorithm import theory
    from specdec_lite.models.tiny_models import tiny_pair

    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path))
    monkeypatch.setattr(theory, "measure_c", lambda *a: 0.25)  # fixed costs: the K choice is deterministic
    monkeypatch.setattr(theory, "measure_verify_cost", lambda m, ks, *a: {k: 1 + 0.1 * k for k in ks})
    pair = tiny_pair("qwen2")
    result = speculative_generate(pair, [1, 2, 3], 20, k="auto", stop_at_eos=False)
    assert result.token_ids == autoregressive_generate(pair, [1, 2, 3], 20, stop_at_eos=False).token_ids
    with pytest.raises(ValueError, match="k must be an int, 'auto'"):
        speculative_generate(pair, [1, 2, 3], 20, k="fast")


def test_calibration_path_is_in_the_cache_folder(monkeypatch, tmp_path):
    from specdec_lite.algorithm.theory import CALIBRATION_FILE, cache_dir

    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path))
    assert REAL_CALIBRATION_PATH() == cache_dir() / CALIBRATION_FILE == tmp_path / "calibration.json"


def test_calibration_is_cached_per_named_pair(monkeypatch, calibration_file):
    from specdec_lite.algorithm import theory
    from specdec_lite.models.tiny_models import tiny_pair

    calls = []
    monkeypatch.setattr(theory, "measure_c", lambda *a: calls.append(1) or 0.5)
    monkeypatch.setattr(theory, "measure_verify_cost", lambda m, ks, *a: {k: 2.0 for k in ks})
    pair = tiny_pair("qwen2")
    pair.draft.config.name_or_path, pair.target.config.name_or_path = "tiny-draft", "tiny-target"
    first = theory.calibrate(pair, k_max=3)
    assert theory.calibrate(pair, k_max=3) == first == theory.Costs(0.5, (2.0, 2.0, 2.0)) and len(calls) == 1
    theory.calibrate(pair, k_max=3, refresh=True)
    assert len(calls) == 2
    assert theory.calibrate(pair, k_max=2) == theory.Costs(0.5, (2.0, 2.0)) and len(calls) == 2  # a prefix of the cache
    assert len(theory.calibrate(pair, k_max=5).verify_costs) == 5 and len(calls) == 3  # beyond it: measured again
    saved = json.loads(calibration_file.read_text())[theory.calibration_key(pair)]
    assert saved == {"c": 0.5, "verify_costs": [2.0] * 5}
    assert [f.name for f in calibration_file.parent.iterdir()] == ["calibration.json"]  # no temp file left


def test_an_unreadable_calibration_file_is_measured_again_and_replaced(monkeypatch, tmp_path):
    from specdec_lite.algorithm import theory
    from specdec_lite.models.tiny_models import tiny_pair

    path = tmp_path / "calibration.json"
    path.write_text('{"half a fi')  # as an interrupted write of the old code could leave it
    monkeypatch.setattr(theory, "calibration_path", lambda: path)
    monkeypatch.setattr(theory, "measure_c", lambda *a: 0.5)
    monkeypatch.setattr(theory, "measure_verify_cost", lambda m, ks, *a: {k: 2.0 for k in ks})
    pair = tiny_pair("qwen2")
    pair.draft.config.name_or_path, pair.target.config.name_or_path = "tiny-draft", "tiny-target"
    with pytest.warns(UserWarning, match="not valid JSON"):
        assert theory.calibrate(pair, k_max=2) == theory.Costs(0.5, (2.0, 2.0))
    assert list(json.loads(path.read_text())) == [theory.calibration_key(pair)]
