"""Shared test set-up: a non-interactive matplotlib backend, and the CPU unless told otherwise."""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("CRFKIT_DEVICE", os.environ.get("CRFKIT_TEST_DEVICE", "cpu"))
