"""Run-time helpers: which device to compute on, and seeding for reproducible runs."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from crfkit._validate import check_int

#: Environment variable that overrides :func:`device` (e.g. ``CRFKIT_DEVICE=cpu``).
DEVICE_ENV = "CRFKIT_DEVICE"


def device(prefer: str | None = None) -> torch.device:
    """Return the device the course computes on.

    The order is: the ``prefer`` argument if given, else the ``CRFKIT_DEVICE``
    environment variable if set, else CUDA when available, then Apple's MPS, then
    the CPU.

    Parameters
    ----------
    prefer : str, optional
        A torch device string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the requested device string is not a valid torch device.
    RuntimeError
        If the requested device is valid but not available on this machine.
    """
    choice = prefer if prefer is not None else os.environ.get(DEVICE_ENV, "").strip()
    source = "prefer" if prefer is not None else DEVICE_ENV
    if choice:
        try:
            dev = torch.device(choice)
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"{source}: expected a torch device string such as 'cpu', 'cuda' or "
                f"'mps', got {choice!r}"
            ) from err
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"{source} asks for {choice!r}, but CUDA is not available here "
                "(torch.cuda.is_available() is False); is a CUDA build of torch installed?"
            )
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"{source} asks for {choice!r}, but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError(f"{source} asks for {choice!r}, but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's random generators (all devices).

    Parameters
    ----------
    seed : int
        A non-negative integer below ``2**32``.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with ``seed``, for code that takes ``generator=``.

    Raises
    ------
    TypeError
        If ``seed`` is not an integer.
    ValueError
        If ``seed`` is negative or not below ``2**32``.
    """
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
