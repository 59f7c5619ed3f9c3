"""A plain training loop over in-memory tensors, with history, hooks and a progress bar.

The loop is short on purpose: a chapter can read it in one screen. Batches are drawn on the
device from a seeded permutation, losses are accumulated on the device and read once per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["History", "fit", "evaluate", "binary_accuracy", "accuracy"]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def binary_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the share of correct predictions for one-logit binary outputs (0-dim tensor)."""
    return ((logits.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).float().mean()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the share of rows whose arg-max class equals ``y`` (0-dim tensor)."""
    return (logits.argmax(dim=-1) == y).float().mean()


@dataclass
class History:
    """Per-epoch curves: ``history['train_loss']`` is a list of floats, one per epoch."""

    curves: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> list[float]:
        return self.curves[key]

    def __contains__(self, key: str) -> bool:
        return key in self.curves

    def last(self, key: str) -> float:
        """Return the final value of curve ``key``."""
        return self.curves[key][-1]


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loss_fn: Callable,
    X: torch.Tensor,
    y: torch.Tensor,
    metric: Metric | None = None,
    batch_size: int = 4096,
) -> tuple[float, float | None]:
    """Return (mean loss, metric) of ``model`` on (X, y), in large batches, in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, total_metric = torch.zeros((), device=X.device), torch.zeros((), device=X.device)
    for i in range(0, len(X), batch_size):
        logits = model(X[i : i + batch_size])
        n = len(logits)
        total_loss += loss_fn(logits, y[i : i + batch_size]) * n
        if metric is not None:
            total_metric += metric(logits, y[i : i + batch_size]) * n
    model.train(was_training)
    loss = (total_loss / len(X)).item()
    return loss, ((total_metric / len(X)).item() if metric is not None else None)


def fit(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn: Callable,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metric: Metric | None = None,
    generator: torch.Generator | None = None,
    after_backward: Callable[[int, nn.Module], None] | None = None,
    on_epoch_end: Callable[[int, nn.Module, History], None] | None = None,
    progress: bool | str = True,
) -> History:
    """Train ``model`` on in-memory tensors and return its History.

    ``batch_size=None`` trains on the whole set at once (full-batch gradient descent).
    ``after_backward(step, model)`` runs after each backward pass, before the optimiser step
    (read gradients there); ``on_epoch_end(epoch, model, history)`` after each epoch's curves
    are recorded. ``progress`` may be a string, used as the progress bar's label.
    """
    n = len(X)
    batch_size = batch_size or n
    history = History({"train_loss": []})
    if metric is not None:
        history.curves["train_metric"] = []
    if val is not None:
        history.curves |= {"val_loss": [], **({"val_metric": []} if metric is not None else {})}
    bar = tqdm(
        range(epochs),
        desc=progress if isinstance(progress, str) else None,
        disable=progress is False,
        leave=False,
        mininterval=0.5,
    )
    step = 0
    model.train()
    for epoch in bar:
        order = torch.randperm(n, generator=generator).to(X.device) if batch_size < n else None
        sum_loss = torch.zeros((), device=X.device)
        sum_metric = torch.zeros((), device=X.device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size] if order is not None else slice(None)
            xb, yb = X[idx], y[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if after_backward is not None:
                after_backward(step, model)
            opt.step()
            step += 1
            sum_loss += loss.detach() * len(xb)
            if metric is not None:
                sum_metric += metric(logits.detach(), yb) * len(xb)
        # One host sync per epoch, for the curves.
        history.curves["train_loss"].append((sum_loss / n).item())
        if metric is not None:
            history.curves["train_metric"].append((sum_metric / n).item())
        if val is not None:
            val_loss, val_metric = evaluate(model, loss_fn, *val, metric=metric)
            history.curves["val_loss"].append(val_loss)
            if metric is not None:
                history.curves["val_metric"].append(val_metric)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, history)
        bar.set_postfix(loss=f"{history.last('train_loss'):.4f}", refresh=False)
    bar.close()
    return history
