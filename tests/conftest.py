"""Shared test settings: tiny-model tests run on one thread (threads only add overhead to 32-wide matmuls), and
calibrations go to a file of the test session, not the user's cache."""

import pytest
import torch

from specdec_lite.algorithm import theory


@pytest.fixture(autouse=True, scope="session")
def calibration_file(tmp_path_factory):
    """Where `theory.calibrate` keeps what the tests measure: a file of this session. In the user's cache, the tiny
    pairs saved under pytest's temporary folders would pile up, and the offline pair's costs, measured while the
    tests load the machine, would be what the next demo drafts by."""
    path = tmp_path_factory.mktemp("calibration") / theory.CALIBRATION_FILE
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(theory, "calibration_path", lambda: path)
        yield path


@pytest.fixture(autouse=True)
def one_thread_unless_slow(request):
    if request.node.get_closest_marker("slow"):
        yield  # the offline pair's big matmuls use every core
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
