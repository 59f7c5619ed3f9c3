"""Time-to-accuracy runs: MNIST to 99% test accuracy on whatever device is there.

The clock starts before the (cached) dataset is loaded and stops after the final test pass;
importing torch is not counted. The recipe: a small batch-normalised convnet (16-32-64 channels)
in channels-last layout, SGD with Nesterov momentum under a one-cycle schedule, label smoothing
0.1, two epochs of batch 128 drawn on the device.
"""

from __future__ import annotations

import time

import torch
from models import speedrun_cnn
from torch import nn

from dlnotes.data import load_images
from dlnotes.train import Batches, accuracy, evaluate, fit

# amp=None: bf16 on CUDA only; on the 2-core CPU it made no measurable difference at batch 128.
MNIST_RECIPE = {"epochs": 2, "batch_size": 128, "lr": 0.1, "widths": (16, 32, 64), "amp": None}


def mnist(device: torch.device, *, seed: int = 0, **overrides) -> dict:
    """Train to 99% on MNIST as fast as the recipe allows; return seconds and accuracy."""
    cfg = MNIST_RECIPE | overrides
    began = time.perf_counter()
    data = load_images("mnist", device=device, progress=False)
    (X, y), (X_test, y_test) = data["train"], data["test"]
    X = X.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(seed)
    model = speedrun_cnn(cfg["widths"]).to(device, memory_format=torch.channels_last)
    batches = Batches(X, y, cfg["batch_size"], drop_last=True,
                      generator=torch.Generator().manual_seed(seed))  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, nesterov=True,
                          weight_decay=5e-4)  # fmt: skip
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg["lr"], total_steps=cfg["epochs"] * len(batches), pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    fit(model, opt, loss_fn, batches, epochs=cfg["epochs"], scheduler=sched, amp=cfg["amp"],
        progress=False)  # fmt: skip
    _, acc = evaluate(model, nn.CrossEntropyLoss(), X_test, y_test, metric=accuracy, amp=cfg["amp"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - began, "test_acc": acc, "recipe": cfg}
