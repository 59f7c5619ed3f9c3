"""The training engine: whole tensors on the device, one host sync per epoch, checkpoints.

``fit`` is the loop every chapter uses; it is short on purpose, so a chapter can read it in one
screen. Batches are drawn on the device (``Batches``), losses and metrics are accumulated there
and read once per epoch, and mixed precision is on by default on CUDA. A chapter whose lesson is
the loop itself writes its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .state import load_state, save_state

__all__ = [
    "History",
    "Batches",
    "batch_slices",
    "fit",
    "evaluate",
    "predict",
    "accuracy",
    "binary_accuracy",
    "frechet_distance",
    "random_crop_flip",
    "warmup_cosine",
]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def binary_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the share of correct predictions for one-logit binary outputs (0-dim tensor)."""
    return ((logits.reshape(-1) > 0) == (y.reshape(-1) > 0.5)).float().mean()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the share of rows whose arg-max class equals ``y`` (0-dim tensor)."""
    return (logits.argmax(dim=-1) == y).float().mean()


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the FID formula on any features.

    ``eps``·I is added to both covariances: dead ReLU features make them singular.
    """
    from scipy import linalg  # imported here: only the GAN chapters need it

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ridge = eps * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(cov_a @ cov_b).real  # imaginary parts are rounding noise
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


@dataclass
class History:
    """Per-epoch curves: ``history['train_loss']`` is a list of floats, one per epoch.

    ``seconds`` holds the cumulative training time at the end of each epoch (evaluation excluded).
    """

    curves: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> list[float]:
        return self.curves[key]

    def __contains__(self, key: str) -> bool:
        return key in self.curves

    def last(self, key: str) -> float:
        """Return the final value of curve ``key``."""
        return self.curves[key][-1]

    def add(self, **values: float) -> None:
        """Append one value to each named curve."""
        for key, value in values.items():
            self.curves.setdefault(key, []).append(value)


# --- data on the device ---------------------------------------------------------------------


@dataclass
class Batches:
    """Mini-batches of whole tensors, shuffled on their device, re-drawn on each iteration.

    One number is drawn from ``generator`` per epoch and seeds a generator on the data's device,
    which draws the permutation and the augmentation: no per-sample Python, no host transfer, and
    the CPU generator's state is all a checkpoint needs to replay an epoch.
    """

    X: torch.Tensor
    y: torch.Tensor
    batch_size: int
    shuffle: bool = True
    drop_last: bool = False
    generator: torch.Generator | None = None
    augment: Augment | None = None

    def __post_init__(self):
        if len(self.X) != len(self.y):
            raise ValueError(f"X has {len(self.X)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n, device = len(self.X), self.X.device
        seed = int(torch.randint(2**62, (), generator=self.generator))
        g = torch.Generator(device=device).manual_seed(seed)
        shuffle = self.shuffle and self.batch_size < n
        order = torch.randperm(n, device=device, generator=g) if shuffle else None
        stop = n - n % self.batch_size if self.drop_last else n
        for i in range(0, stop, self.batch_size):
            if order is None:
                xb, yb = self.X[i : i + self.batch_size], self.y[i : i + self.batch_size]
            else:
                idx = order[i : i + self.batch_size]
                xb, yb = self.X[idx], self.y[idx]
            yield (self.augment(xb, g) if self.augment else xb), yb


def batch_slices(n: int, batch_size: int, *, drop_last: bool = False) -> list[slice]:
    """Return the slices of one pass over ``n`` rows, ``batch_size`` at a time (the last one
    shorter, or left out with ``drop_last``).

    For training loops written by hand (a numpy network, a GAN's alternating steps): a loop over
    these, rather than over ``range(0, n, batch_size)``, is one that a dry run
    (:mod:`dlnotes.runner.dry`) can cut to a few steps, as it cuts ``Batches``.
    """
    if n < 0 or batch_size < 1:
        raise ValueError(f"need n >= 0 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    stop = n - n % batch_size if drop_last else n
    return [slice(i, min(i + batch_size, n)) for i in range(0, stop, batch_size)]


def random_crop_flip(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    pad: int = 4,
    flip: bool = True,
    size: int | None = None,
) -> torch.Tensor:
    """Return a batch (N, C, H, W) randomly translated by up to ``pad`` pixels (zero fill) and
    mirrored left-right with probability 1/2, each image drawn independently on x's device.

    ``size`` crops a size×size window at a random place instead of keeping H×W (the
    resize-then-crop augmentation of pix2pix and CycleGAN: ``pad=0, size=256`` on 286-pixel
    images)."""
    n, _, h, w = x.shape
    out_h, out_w = (h, w) if size is None else (size, size)
    if pad or (out_h, out_w) != (h, w):
        padded = nn.functional.pad(x, (pad, pad, pad, pad)) if pad else x
        spare = min(h - out_h, w - out_w) + 2 * pad  # the same offset range for both axes
        if spare < 0:
            raise ValueError(f"cannot crop {size}×{size} from {h}×{w} images padded by {pad}")
        shift = torch.randint(0, spare + 1, (2, n, 1), device=x.device, generator=generator)
        rows = shift[0] + torch.arange(out_h, device=x.device)  # (N, out_h)
        cols = shift[1] + torch.arange(out_w, device=x.device)  # (N, out_w)
        batch = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indices around a slice put their dims first: (N, H, W, C).
        x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = torch.rand(n, device=x.device, generator=generator) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    return x


# --- schedules ---------------------------------------------------------------------------


def warmup_cosine(
    opt: torch.optim.Optimizer, total_steps: int, warmup_steps: int, floor: float = 0.0
) -> torch.optim.lr_scheduler.LRScheduler:
    """Return a per-step schedule: linear warm-up from ~0, then cosine decay to ``floor`` x LR.

    Step and one-cycle schedules are torch's own (``StepLR``, ``OneCycleLR``).
    """
    sched = torch.optim.lr_scheduler
    warm = sched.LinearLR(opt, start_factor=1e-3, end_factor=1.0, total_iters=max(warmup_steps, 1))
    decay = sched.CosineAnnealingLR(
        opt, T_max=max(total_steps - warmup_steps, 1), eta_min=floor * opt.defaults["lr"]
    )
    return sched.SequentialLR(opt, [warm, decay], milestones=[max(warmup_steps, 1)])


def _stateful(model, opt, scheduler, ema) -> dict:
    parts = {"model": model, "opt": opt, "scheduler": scheduler, "ema": ema}
    return {k: v for k, v in parts.items() if v is not None}


# --- evaluation -----------------------------------------------------------------------------


def _autocast(device: torch.device, amp: bool | None):
    enabled = device.type == "cuda" if amp is None else amp
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.inference_mode()
def predict(
    model: nn.Module,
    X: torch.Tensor,
    *,
    batch_size: int = 4096,
    amp: bool | None = None,
    flip: bool = False,
) -> torch.Tensor:
    """Return the model's float32 outputs for X, computed in large batches in eval mode.

    ``flip=True`` averages the outputs of each image and its mirror (test-time augmentation).
    """
    was_training = model.training
    model.eval()
    outs = []
    with _autocast(X.device, amp):
        for i in range(0, len(X), batch_size):
            xb = X[i : i + batch_size]
            out = model(xb).float()
            if flip:
                out = (out + model(xb.flip(-1)).float()) / 2
            outs.append(out)
    model.train(was_training)
    return torch.cat(outs)


def evaluate(
    model: nn.Module,
    loss_fn: Callable,
    X: torch.Tensor,
    y: torch.Tensor,
    metric: Metric | None = None,
    batch_size: int = 4096,
    amp: bool | None = None,
    flip: bool = False,
) -> tuple[float, float | None]:
    """Return (mean loss, metric) of ``model`` on (X, y), in large batches, in eval mode."""
    logits = predict(model, X, batch_size=batch_size, amp=amp, flip=flip)
    loss = float(loss_fn(logits, y))
    return loss, (float(metric(logits, y)) if metric is not None else None)


# --- the loop -------------------------------------------------------------------------------


def fit(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn: Callable,
    train: tuple[torch.Tensor, torch.Tensor] | Iterable,
    *,
    epochs: int,
    batch_size: int | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    metric: Metric | None = None,
    generator: torch.Generator | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    schedule_every: str = "step",
    clip_grad: float | None = None,
    ema: torch.optim.swa_utils.AveragedModel | None = None,
    amp: bool | None = None,
    checkpoint: str | Path | None = None,
    after_backward: Callable[[int, nn.Module], None] | None = None,
    on_step_end: Callable[[int, nn.Module, torch.Tensor], None] | None = None,
    on_epoch_end: Callable[[int, nn.Module, History], bool | None] | None = None,
    progress: bool | str = True,
) -> History:
    """Train ``model`` and return its History (curves per epoch).

    ``train`` is ``(X, y)`` (batched on X's device by ``Batches`` with ``batch_size``; None means
    the whole set at once), a ``Batches``, or any iterable of (x, y) batches such as a
    ``DataLoader`` for data that does not fit in memory (moved to the model's device per batch).
    ``scheduler`` steps after every optimiser step, or once per epoch with
    ``schedule_every="epoch"``. ``clip_grad`` clips the gradient norm; ``ema`` (an
    ``AveragedModel``) is updated after every step and is what ``val`` evaluates. ``amp``: bf16
    autocast, by default on CUDA only. ``checkpoint``: a file written atomically after every
    epoch; a later call with the same file resumes after the last finished epoch (or returns at
    once if all are done). Hooks: ``after_backward(step, model)`` before the optimiser step (read
    gradients there), ``on_step_end(step, model, loss)`` with the loss still on the device,
    ``on_epoch_end(epoch, model, history)``, which stops training early by returning True.
    """
    device = next(model.parameters()).device
    if isinstance(train, tuple):
        train = Batches(*train, batch_size=batch_size or len(train[0]), generator=generator)
    rng = generator if generator is not None else getattr(train, "generator", None)
    history, start, stop = History(), 0, False
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    generators = {"generator": rng} if rng is not None else {}
    parts = _stateful(model, opt, scheduler, ema)
    # An unreadable checkpoint is named, moved aside and treated as absent: training restarts.
    saved = None
    if checkpoint is not None:
        saved = load_state(checkpoint, generators=generators, map_location=device, **parts)
    if saved is not None:
        if saved["epoch"] > epochs:
            raise ValueError(f"{checkpoint} holds {saved['epoch']} epochs, more than {epochs}")
        history, start, stop = History(saved["history"]), saved["epoch"], saved["stopped"]
    step = start * len(train) if hasattr(train, "__len__") else 0
    bar = tqdm(range(start, start if stop else epochs), desc=progress if isinstance(progress, str) else None,
               disable=progress is False, leave=False, mininterval=0.5)  # fmt: skip
    zero = torch.zeros((), device=device)
    for epoch in bar:
        model.train()
        began = time.perf_counter()
        sums, n = torch.zeros(2, device=device), 0  # loss * n, metric * n: read once per epoch
        for xb, yb in train:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            with _autocast(device, amp):
                logits = model(xb)
                loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if after_backward is not None:
                after_backward(step, model)
            if clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            opt.step()
            if scheduler is not None and schedule_every == "step":
                scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            with torch.no_grad():  # stays on the device: no host sync per step
                m = metric(logits.float(), yb) if metric is not None else zero
                sums += torch.stack([loss.detach().float(), m.float()]) * len(xb)
            n += len(xb)
            if on_step_end is not None:
                on_step_end(step, model, loss.detach())
            step += 1
        if scheduler is not None and schedule_every == "epoch":
            scheduler.step()
        loss_sum, metric_sum = sums.tolist()  # the epoch's one host sync
        seconds = time.perf_counter() - began + (history.last("seconds") if epoch else 0.0)
        history.add(train_loss=loss_sum / n, seconds=seconds)
        if metric is not None:
            history.add(train_metric=metric_sum / n)
        if val is not None:
            val_loss, val_metric = evaluate(
                ema if ema is not None else model, loss_fn, *val, metric=metric, amp=amp
            )
            history.add(val_loss=val_loss, **({"val_metric": val_metric} if metric else {}))
        if on_epoch_end is not None:
            stop = bool(on_epoch_end(epoch, model, history))
        if checkpoint is not None:
            save_state(checkpoint, generators=generators, **parts, epoch=epoch + 1,
                       history=history.curves, stopped=stop)  # fmt: skip
        bar.set_postfix(loss=f"{history.last('train_loss'):.4f}", refresh=False)
        if stop:
            break
    bar.close()
    return history
