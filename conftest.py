"""`pytest` alone runs the unit tests in tests/ AND re-executes every notebook in notebooks/ with nbval.

nbval is switched on here rather than in `addopts` so that `pytest -p no:nbval` (unit tests only)
keeps working. The notebooks run in this Python environment, pinned to the CPU and (on x86, where
FBGEMM exists) to int8 for `dtype="auto"`, with the sanitizer in notebooks/sanitize.cfg.
"""

import os
from pathlib import Path

from specdec_lite.models.quantize import has_fbgemm

ROOT = Path(__file__).parent


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not config.pluginmanager.hasplugin("nbval"):
        return
    os.environ["SPECDEC_LITE_DEVICE"] = "cpu"  # nbval kernels inherit it: a GPU would change the numbers
    if has_fbgemm():  # the format the notebooks were committed in
        os.environ.setdefault("SPECDEC_LITE_DTYPE", "int8")
    option = config.option
    if not (option.nbval or option.nbval_lax):
        option.nbval = True
    option.nbval_current_env = True
    option.nbval_sanitize_with = option.nbval_sanitize_with or str(ROOT / "notebooks" / "sanitize.cfg")
    option.nbval_cell_timeout = min(option.nbval_cell_timeout, 600)


SECONDS_BY_FOLDER: dict[str, float] = {}  # "tests" / "notebooks" -> seconds spent in setup, call and teardown


def pytest_runtest_logreport(report):
    folder = report.nodeid.split("/", 1)[0]
    SECONDS_BY_FOLDER[folder] = SECONDS_BY_FOLDER.get(folder, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Say how long the unit tests and the nbval run took (CI's log then shows the nbval time)."""
    for folder, seconds in sorted(SECONDS_BY_FOLDER.items()):
        what = "nbval over the notebooks" if folder == "notebooks" else f"{folder}/"
        terminalreporter.write_line(f"time in {what}: {int(seconds // 60)} min {seconds % 60:.0f} s")
