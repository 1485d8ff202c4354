"""Weight initialisation shared by the model families (private)."""

from __future__ import annotations

from torch import nn


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
