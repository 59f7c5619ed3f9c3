"""Offline stand-ins, clearly named as such, for `smoke` profiles that need no real data.

They have the shapes and dtypes of the real sets, so a chapter's code path is exercised end to
end; their numbers mean nothing about the real datasets, and a report must say when it used one.
"""

from __future__ import annotations

import torch

from .images import ImageData, normalize
from .text import TextData

__all__ = ["standin_digits", "standin_images", "standin_pets", "standin_reviews"]


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


def standin_pets(n: int, size: int = 32, n_test: int = 8, seed: int = 0) -> ImageData:
    """Return two made-up image domains in horse2zebra's layout (uint8, splits trainA/trainB/testA/testB).

    'horse' (A): a brown ellipse on a green-and-blue scene; 'zebra' (B): the same kind of ellipse
    with black and white stripes. ``n`` training and ``n_test`` test images per domain.
    """
    g = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 1, size).view(-1, 1).expand(size, size)
    cols = torch.linspace(0, 1, size).view(1, -1).expand(size, size)

    def draw(count: int, striped: bool) -> torch.Tensor:
        images = []
        for _ in range(count):
            cy, cx, ry, rx, angle, scale = torch.rand(6, generator=g).tolist()
            sky = torch.tensor([0.5, 0.7, 0.9]).view(3, 1, 1)
            grass = torch.tensor([0.3, 0.6, 0.2]).view(3, 1, 1)
            img = torch.where(rows < 0.3 + 0.2 * cy, sky, grass).clone()
            body = ((rows - 0.35 - 0.3 * cy) / (0.12 + 0.1 * ry)) ** 2
            body = body + ((cols - 0.3 - 0.4 * cx) / (0.18 + 0.1 * rx)) ** 2 < 1
            if striped:
                wave = torch.sin((cols * (1 + angle) + rows * angle) * (20 + 20 * scale))
                fill = (wave > 0).float().expand(3, size, size)
            else:
                fill = torch.tensor([0.55, 0.35, 0.2]).view(3, 1, 1).expand(3, size, size)
            img = torch.where(body, fill, img)
            img = img + 0.05 * torch.randn(3, size, size, generator=g)
            images.append((img.clamp(0, 1) * 255).round().to(torch.uint8))
        return torch.stack(images)

    splits = {}
    for split, count in (("train", n), ("test", n_test)):
        for suffix, label in (("A", 0), ("B", 1)):
            splits[split + suffix] = (draw(count, bool(label)), torch.full((count,), label))
    return ImageData(splits, ["horse", "zebra"], "stand-in: drawn ellipses, plain or striped",
                     "uint8 pixels 0-255, not normalised")  # fmt: skip


_FILLER = ("the film movie story actor plot scene it was is this a and of to in with but "
           "director music ending cast script character watch time").split()  # fmt: skip
_OPINION = {1: "great good wonderful superb loved best enjoyable moving".split(),
            0: "bad awful boring worst hated dull poor waste".split()}  # fmt: skip


def standin_reviews(n: int, seed: int = 0, noise: float = 0.3) -> TextData:
    """Return ``n`` made-up reviews, half each for train and test, balanced labels (1 = positive).

    Each review is filler words with a few opinion words; a share ``noise`` of the opinion words
    comes from the other side, so a model has something, though not everything, to learn.
    """
    g = torch.Generator().manual_seed(seed)

    def pick(words):
        return words[int(torch.randint(len(words), (), generator=g))]

    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = [pick(_FILLER) for _ in range(int(torch.randint(10, 200, (), generator=g)))]
        for _ in range(max(1, len(words) // 12)):
            side = label if float(torch.rand((), generator=g)) >= noise else 1 - label
            words.insert(int(torch.randint(len(words) + 1, (), generator=g)), pick(_OPINION[side]))
        texts.append(" ".join(words))
        labels.append(label)
    half = n // 2
    return TextData({"train": texts[:half], "test": texts[half:]},
                    {"train": torch.tensor(labels[:half]), "test": torch.tensor(labels[half:])},
                    "stand-in: made-up reviews")  # fmt: skip
