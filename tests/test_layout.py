"""The memory layout guard against oneDNN's AVX2 1×1 strided-convolution fault."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from dlnotes.layout import conv_memory_format


def shortcut(c_in):  # a ResNet stage's downsampling shortcut
    return nn.Sequential(nn.Conv2d(c_in, 2 * c_in, 3, padding=1), nn.Conv2d(c_in * 2, 8, 1, 2))


@pytest.mark.parametrize(
    ("capability", "c_in", "device", "expected"),
    [
        ("AVX2", 2, "cpu", torch.contiguous_format),  # 1×1 stride 2 on 4 channels
        ("AVX2", 4, "cpu", torch.channels_last),  # 8 channels: a whole block
        ("DEFAULT", 2, "cpu", torch.contiguous_format),
        ("AVX512", 2, "cpu", torch.channels_last),
        ("AVX2", 2, "cuda", torch.channels_last),
    ],
)
def test_decision(monkeypatch, capability, c_in, device, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert conv_memory_format(shortcut(c_in), device) == expected


def test_stride_one_and_wider_kernels_keep_channels_last(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert conv_memory_format(nn.Conv2d(4, 8, 1, 1), "cpu") == torch.channels_last
    assert conv_memory_format(nn.Conv2d(4, 8, 3, 2), "cpu") == torch.channels_last


TRAIN = """
import torch
from torch import nn
from dlnotes.layout import conv_memory_format
torch.manual_seed(0)
model = nn.Conv2d(4, 8, 1, 2, bias=False)
fmt = conv_memory_format(model, "cpu")
model = model.to(memory_format=fmt)
for _ in range(5):
    x = torch.randn(64, 4, 32, 32).contiguous(memory_format=fmt).requires_grad_()
    model(x).square().mean().backward()
reference = nn.Conv2d(4, 8, 1, 2, bias=False)
reference.load_state_dict(model.state_dict())
x = torch.randn(8, 4, 32, 32)
model.weight.grad = None
model(x.contiguous(memory_format=fmt)).square().mean().backward()
reference(x).square().mean().backward()
assert torch.allclose(model.weight.grad, reference.weight.grad, atol=1e-5), "wrong gradient"
print("trained")
"""


def test_narrow_strided_shortcut_trains_in_the_chosen_layout():
    # A subprocess: on an AVX2 CPU the faulty kernel aborts the interpreter (seen here).
    run = subprocess.run(
        [sys.executable, "-c", TRAIN],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": ""},
    )
    assert run.returncode == 0 and "trained" in run.stdout, run.stderr[-2000:]
