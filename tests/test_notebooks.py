"""What every notebook of the series promises a learner, checked on the committed files (no kernel is run here:
nbval re-executes them).

- The series is numbered in reading order, 00, 01, 02, ... with no gap, and every notebook has a solutions notebook.
- nbval's directives live in cell tags, so a learner reads no CI comments in the code.
- No committed output shows a generator's repr, a stderr stream or a weight-loading progress line.
- A notebook that names a paper links it in a references cell.
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
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
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
