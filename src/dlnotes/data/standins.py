"""Offline stand-ins, clearly named as such, for `smoke` profiles that need no real data.

They have the shapes and dtypes of the real sets, so a chapter's code path is exercised end to
end; their numbers mean nothing about the real datasets, and a report must say when it used one.
"""

from __future__ import annotations

import torch

from .images import ImageData, normalize

__all__ = ["standin_digits", "standin_images"]


def standin_digits(normalization: str = "standard", device="cpu", n_test: int = 297) -> ImageData:
    """Return scikit-learn's 1,797 real 8×8 digits, upscaled to 28×28, in MNIST's layout."""
    from sklearn.datasets import load_digits
    from torch.nn.functional import interpolate

    digits = load_digits()
    X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # (N, 1, 8, 8) in [0, 1]
    X = (interpolate(X, size=(28, 28), mode="bilinear", align_corners=False) * 255).round()
    X = X.clamp(0, 255).to(torch.uint8)
    y = torch.tensor(digits.target)
    splits = {"train": (X[:-n_test], y[:-n_test]), "test": (X[-n_test:], y[-n_test:])}
    x = splits["train"][0].float() / 255
    mean, std = [round(x.mean().item(), 4)], [round(x.std().item(), 4)]
    out, text = {}, ""
    for split, (Xs, ys) in splits.items():
        Xs, text = normalize(Xs.to(device), normalization, mean, std)
        out[split] = (Xs, ys.to(device))
    return ImageData(
        out, [str(i) for i in range(10)], "stand-in: sklearn load_digits", text, mean, std
    )


def standin_images(n: int, shape=(3, 32, 32), classes: int = 10, seed: int = 0) -> ImageData:
    """Return ``n`` random uint8 images with random labels: a shape-only stand-in."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (n,), generator=g)
    half = n // 2
    splits = {"train": (X[:half], y[:half]), "test": (X[half:], y[half:])}
    return ImageData(splits, [str(i) for i in range(classes)], "stand-in: random pixels",
                     "uint8 pixels 0-255, not normalised")  # fmt: skip
