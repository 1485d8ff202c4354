"""Argument checks and weight initialisation shared by the model families (private)."""

from __future__ import annotations

from torch import nn


def check_positive_int(name: str, value: object) -> int:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is an int >= 1; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int (>= 1), got {value}")
    return value


def check_probability(name: str, value: object) -> float:
    """Raise ``ValueError`` unless ``value`` is a number in ``[0, 1)``; return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: expected a float in [0, 1), got {value}")
    return float(value)


def check_choice(name: str, value: object, choices: tuple) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")


def init_weights(model: nn.Module) -> None:
    """The standard initialisation used by every crfkit classification network.

    Convolutions: Kaiming (He) normal, ``fan_out`` mode, gain for ReLU, bias 0
    (He et al., ICCV 2015). Batch norm: weight 1, bias 0. Linear layers:
    ``N(0, 0.01^2)`` weights, bias 0 (the choice of Simonyan & Zisserman 2015
    and torchvision's VGG). Parameter counts do not depend on it.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
