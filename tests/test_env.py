import pytest
import torch

from dlnotes.env import describe_device, pick_device, seed_everything


def test_pick_device_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    assert describe_device("cpu").startswith("cpu (")


def test_pick_device_refuses_unknown_and_missing_cuda():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            pick_device("cuda")


def test_seed_everything_makes_torch_and_generator_repeatable():
    g1 = seed_everything(3)
    a, ga = torch.rand(4), torch.rand(4, generator=g1)
    g2 = seed_everything(3)
    b, gb = torch.rand(4), torch.rand(4, generator=g2)
    assert torch.equal(a, b) and torch.equal(ga, gb)
    seed_everything(4)
    assert not torch.equal(a, torch.rand(4))
