"""The memory layout a convolutional network trains in on the device at hand."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv_memory_format"]

# oneDNN's AVX2 kernel for a 1×1 convolution with stride > 1 on channels-last input writes past
# its workspace in the backward pass when the input has fewer channels than its block of 8:
# heap corruption, a crash, or wrong weight gradients (uxlfoundation/oneDNN#6035). Seen with
# torch 2.14.1 on an AVX2-only AMD EPYC: a narrow ResNet's 4 → 8 shortcut aborted with "double
# free or corruption"; 8 → 16 trained. The AVX-512 kernels could not be tried here.
_AVX2_BLOCK = 8


def conv_memory_format(model: nn.Module, device: torch.device | str) -> torch.memory_format:
    """Return ``torch.channels_last``, or the default layout where channels-last would run a
    1×1 strided convolution of ``model`` through oneDNN's faulty AVX2 kernel.

    Channels-last is the faster layout on the CPU for these networks (a ResNet-18 of width 8 on
    32×32 images: 256 ms against 366 ms a step, float32, one AVX2 thread), so it is kept wherever
    it is safe. Put the model *and* its inputs in the returned layout: a convolution takes the
    channels-last path when either is channels-last.
    """
    device = torch.device(device)
    if device.type != "cpu" or torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return torch.channels_last
    for m in model.modules():
        if (
            isinstance(m, nn.Conv2d)
            and m.kernel_size == (1, 1)
            and max(m.stride) > 1
            and m.in_channels < _AVX2_BLOCK
        ):
            return torch.contiguous_format
    return torch.channels_last
