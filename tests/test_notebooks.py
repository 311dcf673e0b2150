"""What every notebook of the series promises a learner, checked on the committed files (no kernel is run here:
nbval re-executes them).

- The series is numbered in reading order, 00, 01, 02, ... with no gap, and every notebook has a solutions notebook.
- nbval's directives live in cell tags, so a learner reads no CI comments in the code.
- No committed output shows a generator's repr, a stderr stream or a weight-loading progress line.
- A notebook that names a paper links it in a references cell.
- Every decimal number a markdown cell states is computed, not retyped: it appears in the notebook's code or
  outputs (or, for an exercise's parameters, in its solutions notebook). Integers (K = 4, 28 layers) are not checked.
"""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SERIES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
ALL = SERIES + sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
PAPERS = ("Leviathan", "Chen et al", "Medusa", "SpecInfer", "EAGLE", "Jeon")


def cells(path: Path, kind: str):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == kind]


def output_text(out) -> str:
    """What a code cell's output shows as text: a stream's text and a result's plain-text form."""
    return out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))


def test_series_is_numbered_in_reading_order_with_solutions():
    numbers = [int(p.name[:2]) for p in SERIES]
    assert numbers == list(range(len(SERIES))), [p.name for p in SERIES]
    for p in SERIES:
        assert (NOTEBOOKS / "solutions" / f"{p.name[:2]}_solutions.ipynb").exists(), p.name


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_nbval_comment_in_code(path):
    for cell in cells(path, "code"):
        assert "NBVAL" not in cell.source, cell.source[:200]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_noise_in_outputs(path):
    for cell in cells(path, "code"):
        for out in cell.get("outputs", []):
            assert not (out.output_type == "stream" and out.name == "stderr"), (cell.source[:120], out.text[:200])
            text = output_text(out)
            assert "torch._C.Generator" not in text, cell.source[:120]
            assert "Loading weights" not in text, cell.source[:120]


@pytest.mark.parametrize("path", SERIES, ids=lambda p: p.name)
def test_papers_named_are_linked(path):
    markdown = [c.source for c in cells(path, "markdown")]
    if not any(name in text for text in markdown for name in PAPERS):
        return
    references = [text for text in markdown if re.match(r"#+\s*References", text.strip())]
    assert references, f"{path.name} names a paper but has no '## References' cell"
    assert "https://arxiv.org/abs/" in references[0]


DECIMAL = re.compile(r"(?<![\w.^_{])\d+\.\d+(?![\w.])")  # 0.54, 3.20; not 2211.17192 inside a link, not v1.2.3
LINK = re.compile(r"\(https?://[^)]*\)|https?://\S+|arXiv:\d+\.\d+")


def code_and_outputs(path: Path) -> str:
    texts = []
    for cell in cells(path, "code"):
        texts.append(cell.source)
        texts += [output_text(out) for out in cell.get("outputs", [])]
    return "\n".join(texts)


def companion(path: Path) -> Path:
    """A notebook's solutions notebook, or a solutions notebook's chapter."""
    if path.parent.name == "solutions":
        return next(NOTEBOOKS.glob(f"{path.name[:2]}_*.ipynb"))
    return NOTEBOOKS / "solutions" / f"{path.name[:2]}_solutions.ipynb"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_decimal_numbers_in_markdown_are_computed_not_retyped(path):
    computed = code_and_outputs(path) + code_and_outputs(companion(path))
    stated = [(number, text[:80]) for text in (c.source for c in cells(path, "markdown"))
              for number in DECIMAL.findall(LINK.sub("", text))]
    assert [(n, where) for n, where in stated if n not in computed] == []


def test_the_decimal_check_finds_a_retyped_number():
    """The control: a number that no cell computes is caught, one in a link is not."""
    text = "measured c = 0.41 (see [paper](https://arxiv.org/abs/2211.17192))"
    assert DECIMAL.findall(LINK.sub("", text)) == ["0.41"]
