"""`python -m specdec_lite demo` on a saved tiny pair, through --draft/--target (no offline pair)."""

import argparse

import pytest

from specdec_lite.models.offline_pair import DRAFT_CHUNKS, TARGET_CHUNKS
from specdec_lite.models.tiny_models import save_tiny_pair, tiny_pair
from specdec_lite.tools import demo


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("tiny_pair"))


def run_demo(folders, *extra: str) -> int:
    draft, target = folders
    return demo.run(parse(["--draft", str(draft), "--target", str(target), "--prompt", "hello world",
                           "--max-new-tokens", "12", "--device", "cpu", *extra]))


def test_greedy_demo_prints_continuation_acceptance_and_speed_up(tiny_folders, capsys):
    assert run_demo(tiny_folders, "--dtype", "float32", "-k", "3") == 0
    out = capsys.readouterr().out
    assert "hello world" in out
    assert "same tokens as plain greedy decoding: True" in out
    assert "accepted / drafted = " in out and "K = 3" in out
    assert "[" in out  # the step-by-step trace: [accepted] tokens
    assert "tokens per target forward: speculative" in out
    assert out.count("tokens/s") == 2 and "speed-up: " in out
    assert "First run" not in out  # folders given: nothing to build


def test_sampling_demo_in_bf16_runs(tiny_folders, capsys):
    assert run_demo(tiny_folders, "--dtype", "bfloat16", "--temperature", "0.8", "--top-k", "10", "--top-p", "0.9",
                    "--seed", "3") == 0
    out = capsys.readouterr().out
    assert "bfloat16 on cpu" in out
    assert "same tokens as plain greedy" not in out  # only a greedy run can be compared token by token
    assert "speed-up: " in out


@pytest.mark.parametrize("bad, option", [(["-k", "0"], "-k"), (["--max-new-tokens", "0"], "--max-new-tokens"),
                                         (["--top-p", "0"], "top_p"), (["--temperature", "-1"], "temperature"),
                                         (["--prompt", ""], "--prompt"),
                                         (["--int4-draft", "--dtype", "float32"], "--int4-draft")])
def test_bad_option_is_refused_before_loading(bad, option, tiny_folders, monkeypatch, capsys):
    monkeypatch.setattr(demo, "load_pair", lambda *a, **k: pytest.fail("loaded a pair despite a bad option"))
    assert run_demo(tiny_folders, *bad) == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("built", [False, True])
def test_first_run_of_the_offline_pair_is_announced(built, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path))
    if built:
        for chunks in (DRAFT_CHUNKS, TARGET_CHUNKS):
            (tmp_path / chunks.name).mkdir()
            (tmp_path / chunks.name / "config.json").write_text("{}")
    monkeypatch.setattr(demo, "load_pair", lambda *a, **k: tiny_pair("gpt2"))
    assert demo.run(parse(["--prompt", "abc", "--max-new-tokens", "4"])) == 0
    assert ("First run: building the offline Qwen2.5-Coder pair" in capsys.readouterr().out) is not built


def test_default_dtype_is_auto_and_says_what_it_chose(tiny_folders, capsys, monkeypatch):
    monkeypatch.setattr("specdec_lite.models.precision.cpu_flags", lambda: {"avx2"})  # no bf16 matrix hardware
    monkeypatch.delenv("SPECDEC_LITE_DTYPE", raising=False)  # the nbval run pins it
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tiny_folders[0].parent / "cache"))
    assert run_demo(tiny_folders, "-k", "3") == 0
    out = capsys.readouterr().out
    assert "dtype auto -> int8: this CPU has no bf16 matrix instructions" in out
    assert "int8 on cpu" in out
    assert "same tokens as plain greedy decoding: True" in out  # int8 rows are independent: exact


def test_stream_prints_the_continuation_as_it_grows(tiny_folders, capsys):
    assert run_demo(tiny_folders, "--dtype", "float32", "-k", "3", "--stream") == 0
    out = capsys.readouterr().out
    streamed = out.split("--- streaming (speculative) ---\n")[1].split("\n")[0]
    continuation = out.split("--- continuation (speculative) ---\n")[1].split("\n")[0]
    assert streamed == continuation and len(continuation) > len("hello world")  # not a terminal: plain text


@pytest.mark.parametrize("raw", [False, True])
def test_chat_template_is_applied_unless_raw_and_the_output_says_which(raw, monkeypatch, capsys):
    def chat_pair(**_):
        pair = tiny_pair("gpt2")
        pair.tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}.{% endfor %}"
        return pair

    prompts = []
    generate = demo.speculative_generate
    monkeypatch.setattr(demo, "load_pair", chat_pair)
    monkeypatch.setattr(demo, "speculative_generate", lambda pair, prompt, *a, **k: prompts.append(prompt) or
                        generate(pair, prompt, *a, **k))
    assert demo.run(parse(["--prompt", "abc", "--max-new-tokens", "4", *(["--raw"] if raw else [])])) == 0
    out = capsys.readouterr().out
    if raw:
        assert "prompt: raw text (--raw)" in out and prompts[-1] == "abc"
    else:
        assert "prompt: a user turn of the chat template" in out
        assert prompts[-1] == [{"role": "user", "content": "abc"}]
    assert "abc" in out.split("--- continuation (speculative) ---\n")[1]


def test_without_a_chat_template_the_demo_says_it_sends_raw_text(tiny_folders, capsys):
    assert run_demo(tiny_folders, "--dtype", "float32") == 0
    assert "prompt: raw text (the tokenizer has no chat template)" in capsys.readouterr().out


def test_k_auto_is_the_default_and_prints_the_k_of_each_step(tiny_folders, capsys):
    assert demo.DEFAULT_K == "auto" and parse([]).k == "auto"
    assert run_demo(tiny_folders, "--dtype", "float32") == 0
    out = capsys.readouterr().out
    assert "K = auto, per step [" in out and "same tokens as plain greedy decoding: True" in out


def test_k_must_be_a_number_or_auto():
    with pytest.raises(SystemExit):
        parse(["-k", "fast"])


def test_both_runs_count_their_tokens_on_a_progress_bar(tiny_folders, monkeypatch, capsys):
    bars = []
    make_bar = demo.progress_bar

    def recording_bar(description, max_new_tokens):
        bar = make_bar(description, max_new_tokens)
        bars.append(bar)
        return bar

    monkeypatch.setattr(demo, "progress_bar", recording_bar)
    assert run_demo(tiny_folders, "--dtype", "float32", "-k", "3") == 0
    assert [bar.desc for bar in bars] == ["plain decoding", "speculative decoding"]
    assert [(bar.n, bar.total) for bar in bars] == [(12, 12), (12, 12)]  # no EOS in the tiny alphabet's run
    assert "plain decoding" in capsys.readouterr().err  # on stderr: stdout keeps the report


def test_the_int4_draft_option_reaches_the_loader(tiny_folders, capsys):
    assert run_demo(tiny_folders, "--dtype", "int8", "--int4-draft", "-k", "3") == 0
    out = capsys.readouterr().out
    assert "int8, int4 draft on cpu" in out and "same tokens as plain greedy decoding: True" in out
