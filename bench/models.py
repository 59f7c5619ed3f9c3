"""The benchmark's models: the lab reports' kinds of network, at sizes a 2-core CPU can train."""

from __future__ import annotations

import torch
from torch import nn

from dlnotes.models import lenet5 as lenet  # chapter 02's LeNet-5: one copy, in dlnotes

__all__ = ["mlp", "lenet", "small_vgg", "BiLSTM", "speedrun_cnn", "ViT"]


def mlp(hidden: int = 500) -> nn.Module:
    """Return the Fashion-MNIST FNN of the PyTorch notes: 784 -> 500 -> 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def small_vgg(widths=(32, 64, 128)) -> nn.Module:
    """Return a VGG-style net for 32x32 images: two 3x3 convs per stage, max-pool, two linear.

    Like the report's Keras VGG16 it has no batch norm; it is narrower and three stages deep.
    """
    layers, c = [], 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1),
                   nn.ReLU(), nn.MaxPool2d(2)]  # fmt: skip
        c = w
    side = 32 // 2 ** len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, 256), nn.ReLU(),
                         nn.Linear(256, 10))  # fmt: skip


class BiLSTM(nn.Module):
    """The IMDB report's classifier: embedding 64, two bidirectional LSTM layers, two linear."""

    def __init__(self, vocab: int, emb: int = 64, hidden: int = 64):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb, padding_idx=0)
        self.lstm = nn.LSTM(emb, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Sequential(nn.Linear(2 * hidden, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(ids))  # (B, T, 2H)
        return self.head(out[:, -1]).squeeze(-1)  # the last step, as Keras' LSTM returns it


def speedrun_cnn(widths=(16, 32, 64), first_kernel: int = 3, pool_first: bool = False) -> nn.Module:
    """Return the small BN convnet of the CPU MNIST speedrun: three conv stages, global max-pool.

    ``pool_first`` max-pools the first two convolutions' outputs before their batch norm and ReLU
    rather than after (as the fast-MNIST recipe pools before its ReLUs): a quarter of the
    normalisation and activation work at the two largest resolutions. The ReLU commutes with the
    max-pool; the batch norm then sees the pooled statistics.
    """

    def block(cin, cout, k=3, pool=False):
        conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        if pool and pool_first:
            return [conv, nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.ReLU()]
        return [conv, nn.BatchNorm2d(cout), nn.ReLU(), *([nn.MaxPool2d(2)] if pool else [])]

    a, b, c = widths
    return nn.Sequential(*block(1, a, first_kernel, pool=True), *block(a, b, pool=True),
                         *block(b, c), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c, 10))  # fmt: skip


class ViT(nn.Module):
    """Chapter 06's recipe-sized ViT from PyTorch's own pre-norm encoder layers (fused attention).

    7x7 patches (16 tokens + a class token), learned positions, GELU MLP four times wider.
    """

    def __init__(self, dim: int = 128, heads: int = 4, depth: int = 6, patch: int = 7):
        super().__init__()
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (28 // patch) ** 2 + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)  # (B, 16, dim)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])
