"""The `bench` command on a saved tiny pair: table rows, bench.json and bench.png; its option checks."""

import argparse
import json

import pytest
import torch

from specdec_lite.algorithm.theory import predicted_speedup
from specdec_lite.models.tiny_models import save_tiny_pair
from specdec_lite.tools import bench
from specdec_lite.tools.cli import main

METHODS = ["plain", "k2", "adaptive", "confidence", "hf_assisted", "hf_lookup", "tree", "chains8", "tree8", "tree_auto"]


@pytest.fixture
def one_thread():
    """One CPU thread: small multi-row matmuls are far steadier on a busy 2-core machine."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_bench_on_a_tiny_pair_writes_table_json_and_png(tmp_path, capsys, one_thread):
    draft, target = save_tiny_pair(tmp_path / "pair", arch="qwen2")
    out = tmp_path / "out"
    code = main(["bench", "--draft", str(draft), "--target", str(target), "--dtype", "float32",
                 "--prompts", "fibonacci,tcp_udp", "--repeats", "2", "--max-new-tokens", "6",
                 "--methods", ",".join(METHODS), "--threads", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "bench.json").read_text())
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report["runs"]) == 2 * 2 * len(METHODS)  # repeats x prompts x methods
    rows = {(r["method"], r["category"]): r for r in report["summary"]}
    assert set(rows) == {(m, c) for m in METHODS for c in ("code", "qa", "all")}
    for method in METHODS:
        assert method in printed
        row = rows[method, "all"]
        assert row["prompts"] == 2 and row["tokens"] >= 2 and row["tokens_per_s"] > 0
        assert row["same"] == 2  # fp32 greedy: every method emits the plain tokens
    assert rows["plain", "all"]["speedup"] == 1.0
    assert rows["plain", "all"]["tokens_per_forward"] == 1.0
    assert rows["k2", "all"]["acceptance_rate"] is not None and rows["plain", "all"]["acceptance_rate"] is None
    assert rows["k2", "all"]["draft_forwards_per_step"] <= 2 and rows["plain", "all"]["draft_forwards_per_step"] is None
    assert rows["chains8", "all"]["draft_forwards_per_step"] <= 4 and rows["tree8", "all"]["draft_forwards_per_step"] <= 8
    for method in ("tree", "chains8", "tree8"):  # tree methods count their accepted tokens by sibling rank
        ranks = rows[method, "all"]["accepted_by_rank"]
        assert ranks is not None and sum(ranks) == rows[method, "all"]["accepted"]
    assert rows["k2", "all"]["accepted_by_rank"] is None and rows["plain", "all"]["accepted_by_rank"] is None
    assert all(r["accepted_by_rank"] is None for r in report["runs"] if r["method"] in ("plain", "k2"))
    assert "by guess 1/2/3+" in printed
    for run in report["runs"]:  # time inside each model's forwards, by hooks: within the run's wall time
        assert 0 < run["target_seconds"] and 0 <= run["draft_seconds"]
        assert run["target_seconds"] + run["draft_seconds"] < run["seconds"]
        assert (run["draft_seconds"] > 0) == (run["method"] not in ("plain", "hf_lookup"))  # no draft, no draft time
    for row in report["summary"]:
        assert sum(row["ms_per_token"].values()) == pytest.approx(1000 / row["tokens_per_s"])
        assert row["ms_per_token"]["rest"] > 0
    assert "ms/token: target draft rest" in printed
    theory = report["theory"]
    assert [r["k"] for r in theory["rows"] if r["category"] == "all"] == [2]
    assert 0 <= theory["alpha"]["all"] <= 1 and theory["c"] > 0
    row = next(r for r in theory["rows"] if r["category"] == "all")
    assert row["prefill_target"] > 0 and row["prefill_draft"] > 0
    assert row["new_tokens"] == pytest.approx(rows["plain", "all"]["tokens"] / 2, abs=0.5)
    assert row["measured_over_predicted"] == pytest.approx(row["measured"] / row["predicted_run"])
    assert row["measured_over_replay"] == pytest.approx(row["measured"] / row["predicted_replay"])
    k2 = rows["k2", "all"]  # greedy fp32: the replay takes exactly the loop's steps (one target forward each)
    assert row["replayed_tokens_per_step"] == pytest.approx(k2["tokens"] / (k2["forwards"] - k2["prompts"]))
    assert "ceiling 1/c" in printed and "measured/run" in printed and "/replay" in printed
    sizes = theory["weight_bytes"]
    assert theory["c_floor"] == pytest.approx(sizes["draft"] / sizes["target"]) and sizes["draft"] < sizes["target"]
    for name, c in (("measured_c", theory["c"]), ("c_floor", theory["c_floor"])):
        best = theory["best_per_step"]["all"][name]
        assert best["speedup"] == pytest.approx(predicted_speedup(theory["alpha"]["all"], best["k"], c,
                                                                  theory["verify_costs"][str(best["k"])]))
    assert "c's floor" in printed


def namespace(**options):
    defaults = dict(prompts=None, repeats=None, max_new_tokens=None, methods=None, quick=False, threads=None)
    return argparse.Namespace(**(defaults | options))


def test_settings_presets_and_bad_options():
    assert bench.resolve_settings(namespace())["methods"] == list(bench.ALL_METHODS)
    quick = bench.resolve_settings(namespace(quick=True, repeats=2))
    assert quick["repeats"] == 2 and quick["max_new_tokens"] == bench.QUICK["max_new_tokens"]
    for bad, match in [(dict(repeats=0), "--repeats"), (dict(max_new_tokens=0), "--max-new-tokens"),
                       (dict(methods="plain,warp"), "--methods"), (dict(threads=0), "--threads")]:
        with pytest.raises(ValueError, match=match):
            bench.resolve_settings(namespace(**bad))


@pytest.mark.parametrize("bad, option", [(["--repeats", "0"], "--repeats"), (["--methods", "plain,warp"], "--methods"),
                                         (["--prompts", "poetry"], "--prompts"), (["--threads", "0"], "--threads")])
def test_bad_option_is_one_line_and_exit_code_2_before_loading(bad, option, monkeypatch, capsys):
    monkeypatch.setattr(bench, "load_pair", lambda **_: pytest.fail("loaded a pair despite a bad option"))
    assert main(["bench", *bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and option in err and err.count("\n") == 1


def test_shipped_prompts_and_selection(tmp_path):
    shipped = bench.select_prompts("all")
    assert len(shipped) >= 8 and {p["category"] for p in shipped} == {"code", "prose", "qa"}
    assert len({p["name"] for p in shipped}) == len(shipped)
    assert {p["category"] for p in bench.select_prompts("code")} == {"code"}
    assert [p["name"] for p in bench.select_prompts("lighthouse")] == ["lighthouse"]
    own = tmp_path / "mine.json"
    own.write_text(json.dumps([{"name": "x", "category": "code", "text": "def f():"}]))
    assert bench.select_prompts(str(own))[0]["name"] == "x"
    with pytest.raises(ValueError, match="--prompts"):
        bench.select_prompts("poetry")


def test_methods_may_run_on_a_second_dtype():
    assert bench.split_dtype("plain@bfloat16", "int8") == ("plain", "bfloat16")
    assert bench.split_dtype("k4", "int8") == ("k4", "int8")
    settings = bench.resolve_settings(namespace(methods="plain,plain@bfloat16,auto,k4@int4draft"))
    assert settings["methods"] == ["plain", "plain@bfloat16", "auto", "k4@int4draft"]
    assert bench.PAIR_FORMATS["int4draft"] == dict(dtype="int8", int4_draft=True)  # load_pair's options
    with pytest.raises(ValueError, match="@DTYPE"):
        bench.resolve_settings(namespace(methods="plain@int4"))


def test_a_pair_with_an_int4_draft_is_recorded_as_such():
    from specdec_lite.models.int4_draft import to_int4
    from specdec_lite.models.tiny_models import tiny_int8_pair

    pair = tiny_int8_pair("qwen2")
    assert bench.pair_format(pair) == "int8"
    to_int4(pair.draft, 32)
    assert bench.pair_format(pair) == "int8+int4draft"


def test_rank_text_and_add_counts():
    from specdec_lite.tools.bench_report import add_counts, rank_text

    assert add_counts([1, 2], [3]) == [4, 2] and add_counts([], [1, 1]) == [1, 1]
    assert rank_text([5, 2, 1, 1]) == "5/2/2" and rank_text([4]) == "4/0/0" and rank_text(None) == "-"


def test_compare_methods_times_each_method_once(one_thread):
    from specdec_lite.models.tiny_models import tiny_pair

    pair = tiny_pair("qwen2")
    ids = pair.encode("hello world")
    rows = bench.compare_methods({"plain": (bench.plain, pair), "k3": (bench.ours(k=3), pair),
                                  "tree8": (bench.tree(shape="dynamic", n_nodes=8, depth=4), pair)}, ids, 12)
    assert [r["method"] for r in rows] == ["plain", "k3", "tree8"]
    assert rows[0]["target_forwards"] == 12 and rows[0]["tokens_per_forward"] == 1.0
    assert all(r["same_as_first"] and r["tokens"] == 12 and r["tokens_per_s"] > 0 for r in rows)
    assert rows[2]["target_forwards"] < 12
    for row in rows:  # where each run's milliseconds went; plain decoding never calls the draft
        assert sum(row["ms_per_token"].values()) == pytest.approx(1000 * row["seconds"] / row["tokens"])
        assert row["ms_per_token"]["target"] > 0 and (row["ms_per_token"]["draft"] > 0) == (row["method"] != "plain")


def test_forward_clocks_count_what_the_loops_count_and_leave_no_hooks(one_thread):
    from specdec_lite import speculative_generate, tree_generate
    from specdec_lite.models.tiny_models import tiny_pair

    pair = tiny_pair("qwen2")
    for generate in (lambda: speculative_generate(pair, "hello world", 12, k=3),
                     lambda: tree_generate(pair, "hello world", 12, shape="dynamic", n_nodes=6)):
        target, draft = bench.ForwardClock(pair.target, pair.device), bench.ForwardClock(pair.draft, pair.device)
        with target, draft:
            result = generate()
        assert (target.calls, draft.calls) == (result.stats.target_forwards, result.stats.draft_forwards)
        assert 0 < target.seconds and 0 < draft.seconds and target.seconds + draft.seconds < result.stats.wall_time_s
    assert not (pair.target._forward_hooks or pair.target._forward_pre_hooks or pair.draft._forward_hooks)
