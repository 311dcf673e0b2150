"""Shared test settings: tiny-model tests run on one thread (threads only add overhead to 32-wide matmuls)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread_unless_slow(request):
    if request.node.get_closest_marker("slow"):
        yield  # the offline pair's big matmuls use every core
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
