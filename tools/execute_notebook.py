"""Execute notebooks top to bottom on the CPU and save them with outputs, as nbval will re-run them.

    flock /tmp/specdec_heavy.lock python tools/execute_notebook.py notebooks/03_speculative_loop.ipynb

Pins SPECDEC_LITE_DEVICE=cpu, runs each notebook in place with a fresh kernel, and strips only
execution metadata (timestamps), never outputs or execution counts.
"""

import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def strip_execution_metadata(nb) -> None:
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def execute(path: str) -> None:
    os.environ["SPECDEC_LITE_DEVICE"] = "cpu"
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
