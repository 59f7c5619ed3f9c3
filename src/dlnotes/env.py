"""Device and seed selection, explicit and without import-time side effects."""

from __future__ import annotations

import random

import numpy as np
import torch

from .params import DEVICES

__all__ = ["pick_device", "seed_everything", "describe_device"]


def pick_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``: 'auto' takes CUDA, then MPS, then the CPU."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "DEVICE='cuda' was asked for but no CUDA device is visible; use 'auto' or 'cpu'"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(
            "DEVICE='mps' was asked for but MPS is not available; use 'auto' or 'cpu'"
        )
    return torch.device(name)


def describe_device(device: torch.device | str) -> str:
    """Return a short human description of ``device``, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a CPU generator seeded the same way.

    Pass the returned generator to code that draws random numbers, so that a chapter's randomness
    does not depend on what ran before it.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
