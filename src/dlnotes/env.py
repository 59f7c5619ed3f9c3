"""Device and seed selection, explicit and without import-time side effects."""

from __future__ import annotations

import random

import numpy as np
import torch

from .params import DEVICES

__all__ = [
    "pick_device",
    "seed_everything",
    "describe_device",
    "bf16_is_fast",
    "cpu_features",
    "machine_record",
]


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


def bf16_is_fast(device: torch.device | str) -> bool:
    """Return whether bf16 autocast pays on ``device``: a CUDA device with bf16, or a CPU that
    computes bf16 natively (AVX-512 BF16 or AMX).

    Without native support the CPU emulates bf16, slower than float32, and some of oneDNN's
    kernels refuse it outright (an LSTM under bf16 autocast raises "could not create a primitive
    descriptor" on an AVX2-only CPU), so chapters ask this rather than hard-code a choice
    measured on one processor. torch has no public query for the CPU's bf16 units; the checks
    are those ``torch.cpu`` itself exposes.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


# The /proc/cpuinfo flags behind the per-machine choices: bf16 (AVX-512 BF16, AMX) and the
# convolution kernels oneDNN picks (AVX2, AVX-512).
_DECIDING_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")


def cpu_features(cpuinfo: str | None = None) -> dict:
    """Return the CPU's model name, its "family/model" and which of the deciding flags it has.

    Read from ``/proc/cpuinfo`` (or the text given); the values are empty where there is none,
    as on macOS. "family/model" tells processors apart whose model name does not, such as a
    virtual "AMD EPYC" of Zen 3 (25/1) or Zen 4 (25/17).
    """
    info = {"model": "", "family/model": "", "flags": []}
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return info
    family = ""
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not info["model"]:
            info["model"] = value
        elif key == "cpu family" and not family:
            family = value
        elif key == "model" and family and not info["family/model"]:
            info["family/model"] = f"{family}/{value}"
        elif key == "flags" and not info["flags"]:
            have = set(value.split())
            info["flags"] = [flag for flag in _DECIDING_FLAGS if flag in have]
    return info


def machine_record(device: torch.device | str) -> dict:
    """Return what decides the per-device choices on ``device``, for a report's provenance: the
    CPU (`cpu_features`), the instruction set torch dispatches to, and whether bf16 autocast
    pays (`bf16_is_fast`)."""
    device = torch.device(device)
    return {
        "cpu": cpu_features(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_autocast": bf16_is_fast(device),
    }


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a CPU generator seeded the same way.

    Pass the returned generator to code that draws random numbers, so that a chapter's randomness
    does not depend on what ran before it.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
