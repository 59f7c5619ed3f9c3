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


ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 sha_ni
processor\t: 1
model name\t: AMD EPYC
"""


def test_cpu_features_name_the_processor_and_the_flags_that_decide_precision():
    from dlnotes.env import cpu_features

    info = cpu_features(ZEN4)
    assert info == {"model": "AMD EPYC", "family/model": "25/17",
                    "flags": ["avx2", "avx512f", "avx512_bf16", "fma"]}  # fmt: skip
    assert cpu_features("") == {"model": "", "family/model": "", "flags": []}


def test_a_reports_banner_names_the_cpu_and_its_bf16_verdict_in_both_languages():
    from dlnotes.env import machine_record
    from dlnotes.runner.pages import banner_text

    meta = {"profile": "quick", "device": "cpu (2 threads), torch 2.14.1", "duration_s": 75,
            "started": "2026-12-03T08:00:00+00:00",
            "machine": {"cpu": {"model": "AMD EPYC", "family/model": "25/1", "flags": ["avx2"]},
                        "cpu_capability": "AVX2", "bf16_autocast": False}}  # fmt: skip
    assert banner_text(meta, "en") == (
        "profile quick · cpu (2 threads) · AMD EPYC 25/1, AVX2, no fast bf16 · torch 2.14.1 · "
        "2026-12-03 · 1 min 15 s"
    )
    assert "AMD EPYC 25/1, AVX2, bf16 无硬件加速" in banner_text(meta, "zh_CN")
    older = {k: v for k, v in meta.items() if k != "machine"}  # reports run before the record
    assert " · cpu (2 threads) · torch 2.14.1 · " in banner_text(older, "en")
    record = machine_record("cpu")  # this machine's, as the runner stores it
    assert set(record) == {"cpu", "cpu_capability", "bf16_autocast"}
    assert isinstance(record["bf16_autocast"], bool) and record["cpu_capability"]
