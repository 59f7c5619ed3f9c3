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


def test_bf16_is_fast_follows_the_processors_bf16_units(monkeypatch):
    from dlnotes.env import bf16_is_fast

    for avx512_bf16, amx, expected in ((False, False, False), (True, False, True),
                                       (False, True, True)):  # fmt: skip
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert bf16_is_fast("cpu") is expected
    # A torch without those checks: no native bf16 assumed, no error.
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert bf16_is_fast("cpu") is False
    assert bf16_is_fast("meta") is False


def test_chapters_ask_the_device_before_bf16_autocast():
    """A hard-coded amp=True crashed chapter 03 on an AVX2-only CPU (oneDNN's LSTM refuses
    bf16 there); restructured chapters take the choice from bf16_is_fast."""
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for chapter in ("01_mlp", "02_cnn", "03_text"):
        source = (notebooks / f"{chapter}.py").read_text(encoding="utf-8")
        assert "amp=True" not in source and "AMP = True" not in source, chapter
        assert "AMP = bf16_is_fast(device)" in source, chapter
