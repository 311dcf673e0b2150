"""Execute notebooks top to bottom on the CPU and save them with outputs, as nbval will re-run them.

    flock /tmp/bigmodel.lock python tools/execute_notebook.py notebooks/03_speculative_loop.ipynb

Pins SPECDEC_LITE_DEVICE=cpu (and SPECDEC_LITE_DTYPE=int8 on x86, as conftest.py does for nbval), runs each notebook in place with a fresh kernel, and strips only
execution metadata (timestamps), never outputs or execution counts.
"""

import os
import sys
import time

import nbformat
from nbclient import NotebookClient

from specdec_lite.models.quantize import has_fbgemm


def strip_execution_metadata(nb) -> None:
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def execute(path: str) -> None:
    os.environ["SPECDEC_LITE_DEVICE"] = "cpu"
    if has_fbgemm():  # as conftest.py pins it for nbval
        os.environ.setdefault("SPECDEC_LITE_DTYPE", "int8")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    strip_execution_metadata(nb)
    nbformat.write(nb, path)
    print(f"{path}: executed in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        execute(notebook)
