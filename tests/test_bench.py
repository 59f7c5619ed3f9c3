"""The benchmark's own logic; its timings are reported, never asserted."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import labstyle  # noqa: E402
import models  # noqa: E402
import speed  # noqa: E402

from dlnotes.data import Vocab  # noqa: E402
from dlnotes.runner.sphinxext import bench_rows  # noqa: E402


def test_left_pad_moves_padding_to_the_front():
    ids = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 3]])
    assert labstyle.left_pad(ids, torch.tensor([2, 4])).tolist() == [[0, 0, 5, 6], [7, 8, 9, 3]]


def test_reviews_are_encoded_per_access_like_the_engines_tensors():
    vocab = Vocab.build(["good film", "bad film"])
    ds = labstyle.Reviews(["good good film", "bad"], torch.tensor([1, 0]), vocab, max_len=4)
    ids, label = ds[0]
    expected = labstyle.left_pad(*vocab.encode(["good good film"], 4))[0]
    assert torch.equal(ids, expected) and label == 1.0 and ids[0] == Vocab.PAD


def test_lab_loop_and_models_train_on_tiny_data():
    torch.manual_seed(0)
    X, y = torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))
    data = list(zip(X, y, strict=True))
    model = models.lenet()
    curves = labstyle.fit(model, torch.optim.Adam(model.parameters(), 1e-3), torch.nn.CrossEntropyLoss(),
                          data, data, epochs=2, batch_size=8, device="cpu", seed=0, binary=False)  # fmt: skip
    assert len(curves["test_acc"]) == 2 and curves["seconds"][1] > curves["seconds"][0] > 0
    assert models.small_vgg()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert models.BiLSTM(50)(torch.randint(0, 50, (3, 7))).shape == (3,)
    assert models.speedrun_cnn()(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    vit = models.ViT(dim=32, heads=2, depth=2)
    assert vit(torch.randn(2, 1, 28, 28)).shape == (2, 10) and vit.pos.shape == (1, 17, 32)


def test_time_to_target_counts_training_and_evaluation():
    curves = {
        "seconds": [2.0, 4.0, 6.0],
        "eval_seconds": [1.0, 1.0, 1.0],
        "test_acc": [0.5, 0.8, 0.9],
    }
    assert speed.time_to(curves, 0.8) == 6.0
    assert speed.time_to(curves, 0.95) is None


def test_bench_rows_give_speed_ups_against_the_lab_loop():
    run = {"samples_per_second": 100.0, "test_acc": [0.9], "time_to_target": 3.0,
           "target_acc": 0.9, "peak_memory_mib": 900.0, "config": {"batch_size": 64}}  # fmt: skip
    result = {"tasks": {"t": {"task": {"label": "T"}, "runs": {
        "lab": run, "engine": run | {"samples_per_second": 350.0, "time_to_target": None}}}},
        "speedrun": [{"seconds": 12.5, "test_acc": 0.991}]}  # fmt: skip
    (headers, pairs), (_, runs) = bench_rows(result)
    assert len(headers) == len(pairs[0]) and [p[4] for p in pairs] == ["1.0×", "3.5×"]
    assert pairs[1][6] == "not reached" and runs == [["MNIST to 99%", "0", "12.5", "0.9910"]]
    assert bench_rows(result, "zh_CN")[0][1][1][6] == "未达到"
