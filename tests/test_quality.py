"""The `quality` command on a saved tiny target: int8 against float32, per prompt."""

import json

from specdec_lite.models.tiny_models import save_tiny_pair
from specdec_lite.tools import cli, quality


def test_first_difference():
    assert quality.first_difference([1, 2, 3], [1, 2, 3]) is None
    assert quality.first_difference([1, 2, 3], [1, 5, 3]) == 1


def test_quality_of_int8_against_float32_on_a_tiny_target(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "cache"))
    _, target = save_tiny_pair(tmp_path / "pair", arch="qwen2")
    args = cli.build_parser().parse_args(["quality", "--target", str(target), "--dtype", "int8", "--reference",
                                          "float32", "--prompts", "fibonacci,lighthouse", "--max-new-tokens", "8",
                                          "--out", str(tmp_path / "out")])
    assert quality.run(args) == 0
    report = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert [row["prompt"] for row in report["rows"]] == ["fibonacci", "lighthouse"]
    for row in report["rows"]:
        assert 0 <= row["top1_agreement"] <= 1
        assert row["first_difference"] is None or 0 <= row["first_difference"] < 8
    assert "int8 target vs float32 target" in capsys.readouterr().out


def test_same_dtype_agrees_with_itself(tmp_path):
    _, target = save_tiny_pair(tmp_path / "pair", arch="qwen2")
    args = cli.build_parser().parse_args(["quality", "--target", str(target), "--dtype", "float32", "--reference",
                                          "float32", "--prompts", "fibonacci", "--max-new-tokens", "6",
                                          "--out", str(tmp_path / "out")])
    assert quality.run(args) == 0
    row = json.loads((tmp_path / "out" / "quality.json").read_text())["rows"][0]
    assert row["first_difference"] is None and row["top1_agreement"] == 1.0


def test_bad_max_new_tokens_exits_with_2(capsys):
    args = cli.build_parser().parse_args(["quality", "--max-new-tokens", "0"])
    assert quality.run(args) == 2
    assert "--max-new-tokens must be >= 1" in capsys.readouterr().err
