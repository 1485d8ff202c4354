"""crfkit.device and crfkit.seed_everything."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import crfkit as ck


def test_device_honours_environment_variable(monkeypatch):
    monkeypatch.setenv("CRFKIT_DEVICE", "cpu")
    assert ck.device() == torch.device("cpu")


def test_device_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv("CRFKIT_DEVICE", "not-a-device")
    assert ck.device("cpu") == torch.device("cpu")


def test_device_automatic_order(monkeypatch):
    monkeypatch.delenv("CRFKIT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert ck.device().type == expected


def test_device_rejects_bad_string(monkeypatch):
    monkeypatch.setenv("CRFKIT_DEVICE", "gpu0")
    with pytest.raises(ValueError, match=r"CRFKIT_DEVICE: expected a torch device string .* got 'gpu0'"):
        ck.device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_refuses_missing_cuda():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        ck.device("cuda")


def test_seed_everything_reproduces_all_generators():
    gen = ck.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=gen))
    gen = ck.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=gen))
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])


@pytest.mark.parametrize("seed, error, match", [
    (-1, ValueError, "seed: expected an int in 0..4294967295, got -1"),
    (2**32, ValueError, "got 4294967296"),
    (1.5, TypeError, "seed: expected an int in 0..4294967295, got float 1.5"),
    (True, TypeError, "got bool"),
])
def test_seed_everything_rejects_bad_seeds(seed, error, match):
    with pytest.raises(error, match=match):
        ck.seed_everything(seed)


def test_package_docstring_has_the_glossary():
    doc = ck.__doc__
    for word in ("[B, K, H, W]", "[B, H, W]", "log_z", "255", "energies", "[B, E, K, K, H, W]"):
        assert word in doc


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ck.nope  # noqa: B018
