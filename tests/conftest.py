"""Shared test set-up: a non-interactive matplotlib backend, and the CPU unless told otherwise."""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("CRFKIT_DEVICE", os.environ.get("CRFKIT_TEST_DEVICE", "cpu"))


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Run a test module on one torch thread, restored afterwards.

    For modules of tiny tensors: intra-op threads only add overhead there, and on a
    machine whose cores are busy, BLAS threads that wait for each other can make a tiny
    matmul take milliseconds. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
