"""Models that more than one chapter (or ``bench/``) uses, and parameter counting.

A model a chapter teaches stays in that chapter; it moves here when a second one needs it.
"""

from __future__ import annotations

from torch import nn

__all__ = ["n_params", "lenet5", "Judge"]


def n_params(model: nn.Module) -> int:
    """Return the number of trainable and frozen parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def lenet5(classes: int = 10) -> nn.Module:
    """Return LeNet-5 for 28×28 single-channel images, with ReLU and max-pooling (61,706
    parameters for 10 classes), as chapter 02 trains it and ``bench/`` times it."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 6, 14, 14)
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 5, 5)
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes),
    )  # fmt: skip


class Judge(nn.Module):
    """A small classifier whose penultimate features score generated images (the GAN chapters).

    Convolution blocks (3×3, batch norm, ReLU, 2×2 max-pool) of ``widths`` channels, then a
    ``features``-wide layer: a linear one over the flattened map when ``size`` (the input side) is
    given, else one more 3×3 convolution and a global average. ``judge.features(x)`` gives the
    (B, features) vectors a Fréchet distance is measured on; ``judge(x)`` the class logits.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        *,
        widths: tuple[int, ...] = (32, 64),
        size: int | None = None,
        features: int = 64,
    ):
        super().__init__()
        layers, channels = [], in_channels
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]  # fmt: skip
            channels = width
        if size is not None:
            side = size // 2 ** len(widths)
            layers += [nn.Flatten(), nn.Linear(channels * side * side, features), nn.ReLU()]
        else:
            layers += [nn.Conv2d(channels, features, 3, padding=1), nn.BatchNorm2d(features),
                       nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(features, classes)

    def forward(self, x):
        return self.out(self.features(x))  # (B, classes)
