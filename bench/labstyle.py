"""The loop the lab reports wrote, kept faithful on purpose: it is the benchmark's baseline.

Per-sample ``Dataset`` objects (PIL decode and ``transforms`` per image, tokenising per review),
a ``DataLoader`` with ``num_workers=0``, ``.item()`` after every step, and a test pass that feeds
one sample at a time, as the MNIST report's ``test()`` did (with arg-max instead of its sampling).
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dlnotes.data import Vocab


class Reviews(Dataset):
    """IMDB reviews tokenised and encoded one at a time, on every access."""

    def __init__(self, texts: list[str], labels: torch.Tensor, vocab: Vocab, max_len: int):
        self.texts, self.labels, self.vocab, self.max_len = texts, labels, vocab, max_len

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int):
        ids, lengths = self.vocab.encode([self.texts[i]], self.max_len)
        return left_pad(ids, lengths)[0], self.labels[i].float()


def left_pad(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Return right-padded ids (N, T) padded on the left instead, as Keras' pad_sequences does."""
    T = ids.shape[1]
    src = (torch.arange(T) - (T - lengths)[:, None]) % T  # (N, T)
    return ids.gather(1, src)


def fit(model, opt, loss_fn, train_set, test_set, *, epochs, batch_size, device, seed, binary):
    """Train the lab-report way and return per-epoch curves: seconds, eval seconds, accuracies."""
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=0, generator=g)
    curves = {"seconds": [], "eval_seconds": [], "train_loss": [], "train_acc": [], "test_acc": []}
    elapsed = 0.0
    for _ in range(epochs):
        model.train()
        began = time.perf_counter()
        losses, correct, seen = [], 0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            pred = (out > 0).float() if binary else out.argmax(1)
            correct += (pred == y).sum().item()
            seen += len(y)
        elapsed += time.perf_counter() - began
        began = time.perf_counter()
        test_acc = test(model, test_set, device, binary)
        curves["eval_seconds"].append(time.perf_counter() - began)
        curves["seconds"].append(elapsed)
        curves["train_loss"].append(sum(losses) / len(losses))
        curves["train_acc"].append(correct / seen)
        curves["test_acc"].append(test_acc)
    return curves


def test(model: nn.Module, test_set, device, binary: bool) -> float:
    """Return test accuracy, one sample per forward pass."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(len(test_set)):
            x, y = test_set[i]
            out = model(x.unsqueeze(0).to(device))
            pred = float(out.item() > 0) if binary else out.argmax(1).item()
            correct += int(pred == float(y))
    return correct / len(test_set)
