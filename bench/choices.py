"""Training-step throughput of each benchmark model under layout, precision and compile choices.

    .venv/bin/python bench/choices.py            # about three minutes on 2 CPU cores
    .venv/bin/python bench/choices.py cpu vit    # one model only

Synthetic inputs of the real shapes, Adam, a few warm-up steps, then the mean of timed steps. The
numbers behind the engine's per-model choices in speed.py (see bench/README.md).
"""

from __future__ import annotations

import sys
import time

import models
import torch
from torch import nn

# name → (model factory, input shape, number of classes or None for binary, batch sizes)
MODELS = {
    "mlp": (models.mlp, (1, 28, 28), 10, (100, 1000)),
    "lenet": (models.lenet, (1, 28, 28), 10, (64, 512)),
    "vgg": (models.small_vgg, (3, 32, 32), 10, (64, 256)),
    "bilstm": (lambda: models.BiLSTM(32_000), (128,), None, (64, 256)),
    "vit": (models.ViT, (1, 28, 28), 10, (128, 512)),
}
VARIANTS = [  # (channels_last, bf16 autocast, torch.compile)
    (False, False, False), (True, False, False), (False, True, False), (True, True, False),
    (False, False, True), (True, False, True),
]  # fmt: skip


def step_rate(name: str, batch: int, cl: bool, bf16: bool, compiled: bool, device) -> tuple:
    """Return (samples per second, seconds of the first step) for one configuration."""
    make, shape, classes, _ = MODELS[name]
    torch.manual_seed(0)
    model = make().to(device)
    if classes is None:
        x = torch.randint(0, 32_000, (batch, *shape), device=device)
        y = torch.randint(0, 2, (batch,), device=device).float()
        loss_fn = nn.BCEWithLogitsLoss()
    else:
        x = torch.randn(batch, *shape, device=device)
        y = torch.randint(0, classes, (batch,), device=device)
        loss_fn = nn.CrossEntropyLoss()
    if cl:
        model, x = (
            model.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compiled else model

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    began = time.perf_counter()
    step()
    first = time.perf_counter() - began
    for _ in range(3):
        step()
    n = max(5, 2048 // batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * n / (time.perf_counter() - began), first


def main() -> None:
    device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    wanted = sys.argv[2:] or list(MODELS)
    unknown = set(wanted) - set(MODELS)
    if unknown:
        sys.exit(f"unknown model {', '.join(sorted(unknown))}; choose from {', '.join(MODELS)}")
    print(
        f"{'model':7} {'batch':>5} {'layout':>13} {'bf16':>5} {'compile':>7} {'samples/s':>10} {'first step s':>12}"
    )
    for name in wanted:
        for batch in MODELS[name][-1]:
            for cl, bf16, compiled in VARIANTS:
                if cl and name in ("mlp", "bilstm", "vit"):
                    continue  # no convolutions (the ViT's one is its patch cut): layout is moot
                rate, first = step_rate(name, batch, cl, bf16, compiled, device)
                layout = "channels_last" if cl else "contiguous"
                print(f"{name:7} {batch:5} {layout:>13} {bf16!s:>5} {compiled!s:>7} {rate:10.0f} {first:12.1f}",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
