"""The airbench94 recipe for CIFAR-10 (94% in 3.83 s on an A100), rewritten to run on a CPU.

Written here from the description and the published legacy script of "94% on CIFAR-10 in 3.29
Seconds on a Single GPU" (Keller Jordan, arXiv:2404.00498; github.com/KellerJordan/cifar10-airbench,
`legacy/airbench94.py`), not copied. What it does, as published:

- **Network**: a frozen 2×2 patch-whitening convolution (3 → 24 channels: the eigenvectors of the
  covariance of 2×2 patches of 5,000 training images, scaled by their eigenvalues, with their
  negatives), whose bias trains for the first 3 epochs; GELU; three groups of
  (conv → max-pool → batch norm → GELU → conv → batch norm → GELU) of 64, 256 and 256 channels,
  the convolutions identity-initialised (Dirac) on their first input channels, the batch norms
  without a trained scale, momentum 0.6, eps 1e-12; a 3×3 max-pool, a linear layer without bias
  and the logits scaled by 1/9.
- **Training**: 9.9 epochs of batches of 1,024 (476 steps); SGD with Nesterov momentum 0.85, the
  learning rate 11.5 and weight decay 0.0153 per 1,024 examples in the script's decoupled form, 64×
  the learning rate for the batch norms' biases; a linear warm-up from 0.2 to 1 over 23% of the
  steps, then down to 0.07; label smoothing 0.2 with the loss summed over the batch; a lookahead
  (an average of the weights every 5 steps, its decay 0.95⁵ · (step / steps)³, copied back).
- **Data**: per-image translations of up to 2 pixels of a reflect-padded copy; "alternating flip":
  a random half of the images mirrored once, then every image mirrored in odd epochs.
- **Test**: six views weighted as the script does (mirror; one-pixel shifts up-left and
  down-right).

What changes on a CPU, and nothing else: the published script casts the network to float16 on the
GPU (batch norms in float32). A CPU has no fast float16, so the network keeps float32 weights and
computes under bf16 autocast where the CPU computes bf16 natively (`bf16_is_fast`), in float32
elsewhere; the layout stays channels-last. The run records which.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.data import load_images
from dlnotes.env import bf16_is_fast
from dlnotes.train import random_crop_flip

HYP = {"epochs": 9.9, "batch_size": 1024, "lr": 11.5, "momentum": 0.85, "weight_decay": 0.0153,
       "bias_scaler": 64.0, "label_smoothing": 0.2, "whiten_bias_epochs": 3, "translate": 2,
       "widths": (64, 256, 256), "bn_momentum": 0.6, "scale": 1 / 9}  # fmt: skip


class _Norm(nn.BatchNorm2d):
    """Batch norm with a fixed scale of one and a trained bias (the recipe's)."""

    def __init__(self, channels: int, momentum: float):
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad_(False)


def _conv(c_in: int, c_out: int, k: int = 3, *, padding="same", bias=False) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, padding=padding, bias=bias)
    with torch.no_grad():
        if bias:
            conv.bias.zero_()
        nn.init.dirac_(conv.weight[: min(c_in, c_out)])  # identity on the first channels
    return conv


def _group(c_in: int, c_out: int, momentum: float) -> list[nn.Module]:
    return [_conv(c_in, c_out), nn.MaxPool2d(2), _Norm(c_out, momentum), nn.GELU(),
            _conv(c_out, c_out), _Norm(c_out, momentum), nn.GELU()]  # fmt: skip


def net(hyp: dict = HYP) -> nn.Sequential:
    """Return the airbench94 network; its first (whitening) layer still needs `whiten`."""
    a, b, c = hyp["widths"]
    m = hyp["bn_momentum"]
    whitening = _conv(3, 24, 2, padding=0, bias=True)
    whitening.weight.requires_grad_(False)
    return nn.Sequential(
        whitening, nn.GELU(),  # (B, 24, 31, 31)
        *_group(24, a, m), *_group(a, b, m), *_group(b, c, m),  # (B, c, 3, 3)
        nn.MaxPool2d(3), nn.Flatten(), nn.Linear(c, 10, bias=False),
    )  # fmt: skip


def whiten(layer: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set ``layer``'s weights to whiten its patches of ``images`` (both signs of each direction)."""
    c, (h, w) = images.shape[1], layer.weight.shape[2:]
    patches = images.float().unfold(2, h, 1).unfold(3, w, 1)  # (N, C, H', W', h, w)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * h * w)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    scaled = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).flip(0)
    with torch.no_grad():
        layer.weight.copy_(torch.cat([scaled, -scaled]).reshape(-1, c, h, w))


def _predict(model: nn.Module, images: torch.Tensor, amp: bool) -> torch.Tensor:
    """Return the six-view test-time logits (mirror × {none, up-left, down-right} shifts)."""

    def mirrored(x):
        return 0.5 * model(x) + 0.5 * model(x.flip(-1))

    out = []
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=amp):
        for x in images.split(2000):
            padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
            shifted = (mirrored(padded[:, :, :-2, :-2]) + mirrored(padded[:, :, 2:, 2:])) / 2
            out.append((0.5 * mirrored(x) + 0.5 * shifted).float())
    return torch.cat(out)


def train(device: torch.device, *, seed: int = 0, epochs: float | None = None) -> dict:
    """Train airbench94 once on the CIFAR-10 JPEG copy; return seconds, accuracy and settings.

    The clock starts before the (cached, decoded) dataset is read and stops after the test pass.
    ``epochs`` shortens the run (tests, step-time estimates).
    """
    hyp = HYP | ({"epochs": epochs} if epochs else {})
    amp = bf16_is_fast(device)
    began = time.perf_counter()
    data = load_images("cifar10-jpg", device=device, progress=False)
    (X, y), (X_test, y_test) = data["train"], data["test"]
    X, X_test = (t.contiguous(memory_format=torch.channels_last) for t in (X, X_test))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = net(hyp).to(device, memory_format=torch.channels_last)
    # 5,000 training images, as the script whitens on; drawn at random, since the mirror's
    # training split comes sorted by class and its first 5,000 are all aeroplanes.
    whiten(model[0], X[torch.randperm(len(X), generator=gen)[:5000]])

    bs, momentum = hyp["batch_size"], hyp["momentum"]
    kilostep = 1024 * (1 + 1 / (1 - momentum))  # the script's decoupled → PyTorch SGD units
    lr, wd = hyp["lr"] / kilostep, hyp["weight_decay"] * bs / kilostep
    norm_biases = [p for n_, p in model.named_parameters() if p.requires_grad and p.ndim == 1
                   and isinstance(model.get_submodule(n_.rsplit(".", 1)[0]), _Norm)]  # fmt: skip
    ids = {id(p) for p in norm_biases}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    lr_b = lr * hyp["bias_scaler"]
    opt = torch.optim.SGD([dict(params=norm_biases, lr=lr_b, weight_decay=wd / lr_b),
                           dict(params=others, lr=lr, weight_decay=wd / lr)],
                          momentum=momentum, nesterov=True)  # fmt: skip
    steps_per_epoch = len(X) // bs
    total = math.ceil(steps_per_epoch * hyp["epochs"])
    warm = int(total * 0.23)

    def factor(step):
        if step < warm:
            return 0.2 + 0.8 * step / warm
        return 1.0 - 0.93 * (step - warm) / (total - warm)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss(label_smoothing=hyp["label_smoothing"], reduction="sum")

    pad = hyp["translate"]
    flipped_once = random_crop_flip(X, gen, pad=0)  # a random half mirrored, once
    padded = F.pad(flipped_once, (pad,) * 4, mode="reflect")
    step = 0
    model.train()
    for epoch in range(math.ceil(hyp["epochs"])):
        model[0].bias.requires_grad_(epoch < hyp["whiten_bias_epochs"])
        images = random_crop_flip(padded, gen, pad=0, flip=False, size=X.shape[-1])
        if epoch % 2:
            images = images.flip(-1)
        order = torch.randperm(len(images), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * bs : (i + 1) * bs]
            with torch.autocast(device.type, torch.bfloat16, enabled=amp):
                loss = loss_fn(model(images[idx]) * hyp["scale"], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 5 == 0 or step == total:
                decay = 1.0 if step == total else 0.95**5 * (step / total) ** 3
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        if v.is_floating_point():
                            ema[k].lerp_(v, 1 - decay)
                            v.copy_(ema[k])
            if step == total:
                break
    model.eval()
    logits = _predict(lambda x: model(x) * hyp["scale"], X_test, amp)
    acc = (logits.argmax(1) == y_test).float().mean().item()
    return {"seconds": time.perf_counter() - began, "test_acc": acc, "epochs": hyp["epochs"],
            "steps": step, "precision": "bf16 autocast" if amp else "float32",
            "data": "cifar10-jpg (JPEG quality ≈75 copy)"}  # fmt: skip
