"""The benchmark's own logic; its timings are reported, never asserted."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import labstyle  # noqa: E402
import models  # noqa: E402
import overhead  # noqa: E402
import peers  # noqa: E402
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


def test_peer_recipes_have_their_published_networks_and_the_summary_counts_seeds_at_99():
    from dlnotes.models import n_params

    fast, examples = peers.fast_mnist_net(), peers.examples_net()
    # pytorch/examples' MNIST net has 1,199,882 parameters; the fast recipe's 800 -> 256 head
    # holds most of its 215,194.
    assert (n_params(fast), n_params(examples)) == (215_194, 1_199_882)
    x = torch.randn(3, 1, 28, 28)
    assert fast(x).shape == (3, 10)
    assert torch.allclose(examples(x).exp().sum(1), torch.ones(3), atol=1e-5)  # log-softmax
    rows = [{"recipe": "ours", "seconds": s, "test_acc": a}
            for s, a in ((4.0, 0.991), (6.0, 0.989), (5.0, 0.993))]  # fmt: skip
    summary = peers.summary(rows, 0.99)["ours"]
    assert summary["median_seconds"] == 5.0 and summary["at_target"] == 2
    assert summary["min_test_acc"] == 0.989 and abs(summary["mean_test_acc"] - 0.991) < 1e-12
    # The appendix's table: one row per recipe, its time as a multiple of the fast-MNIST peer's.
    rows.append({"recipe": "fast-mnist", "seconds": 10.0, "test_acc": 0.990})
    (headers, table) = bench_rows({"summary": peers.summary(rows, 0.99)})[0]
    assert [r[0] for r in table] == ["fast-MNIST (tuomaso)", "dlnotes speedrun"]
    assert len(headers) == len(table[0]) and table[1][3] == "0.50" and table[1][6] == "2 / 3"
    assert headers[3] == "× fast-MNIST" and headers[-1] == "Runs at 99%"
    assert bench_rows({"summary": peers.summary(rows, 0.99)}, "zh_CN")[0][1][1][0] == "dlnotes 速通"
    # With the peer also run in this machine's layout and precision, a second ratio column.
    rows.append({"recipe": "fast-mnist-tuned", "seconds": 8.0, "test_acc": 0.990})
    (headers, table) = bench_rows({"summary": peers.summary(rows, 0.99)})[0]
    assert headers[4] == "× fast-MNIST, this machine's choices" and len(headers) == len(table[0])
    ours = next(r for r in table if r[0] == "dlnotes speedrun")
    assert ours[3:5] == ["0.50", "0.62"]
    # CIFAR-10: the ratio is to airbench94, the target 94%.
    cifar = [{"recipe": r, "seconds": s, "test_acc": 0.94} for r, s in
             (("airbench94", 100.0), ("ours-cifar10", 80.0))]  # fmt: skip
    result = {"task": "cifar10", "target": 0.94, "summary": peers.summary(cifar, 0.94)}
    (headers, table) = bench_rows(result)[0]
    assert headers[3] == "× airbench94" and headers[-1] == "Runs at 94%" and table[1][3] == "0.80"
    assert bench_rows(result, "zh_CN")[0][0][3] == "相对 airbench94"


def test_overhead_pairs_both_loops_on_one_network_and_the_appendix_reads_it(monkeypatch):
    from dlnotes.env import bf16_is_fast

    # Two tiny tasks, two rounds: each loop trains every round, in alternating order.
    monkeypatch.setattr(overhead, "TASKS", {
        "MLP": ("mlp", (1, 28, 28), 32, 64, False),
        "LeNet": ("lenet", (1, 28, 28), 32, 64, False),
    })  # fmt: skip
    runs = [overhead.measure(name, torch.device("cpu"), rounds=2) for name in ("MLP", "LeNet")]
    for r in runs:
        assert len(r["speeds"]["bare"]) == len(r["speeds"]["engine"]) == 2
        lo, hi = r["ratio_range"]
        assert 0 < lo <= r["ratio_median"] <= hi and r["amp"] == bf16_is_fast("cpu")
    assert runs[0]["layout"] == "contiguous"  # no convolution, no layout choice
    result = {"kind": "overhead", "runs": runs}
    ((headers, rows),) = bench_rows(result)
    assert [row[0] for row in rows] == ["MLP", "LeNet"] and len(headers) == len(rows[0])
    assert rows[0][5] == f"{runs[0]['ratio_median']:.1%}"
    assert bench_rows(result, "zh_CN")[0][0][3] == "裸循环（样本/秒）"
    assert overhead.table(result).count("\n") == 3  # header, rule, two rows


def test_the_bare_loop_trains():
    torch.manual_seed(0)
    X, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    model = models.mlp(32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    before = float(loss_fn(model(X), y))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        overhead.bare_epoch(model, opt, loss_fn, X, y, 64, False, g)
    assert float(loss_fn(model(X), y)) < 0.5 * before  # it memorises 256 random labels


def test_speedrun_pools_first_and_decides_its_precision_on_the_device(monkeypatch):
    import speedrun

    from dlnotes.env import bf16_is_fast

    net = models.speedrun_cnn((4, 8, 8), first_kernel=5, pool_first=True)
    kinds = [type(m).__name__ for m in net]
    pooled_first = ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert kinds[:4] == kinds[4:8] == pooled_first and "MaxPool2d" not in kinds[8:]
    assert net[0].kernel_size == (5, 5)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    # The default is the earlier network (overhead.py's "speedrun CNN"): pooling after the ReLU.
    assert [type(m).__name__ for m in models.speedrun_cnn()][:4] == ["Conv2d", "BatchNorm2d", "ReLU",
                                                                      "MaxPool2d"]  # fmt: skip

    g = torch.Generator().manual_seed(0)
    tiny = {"train": (torch.randn(640, 1, 28, 28, generator=g), torch.randint(0, 10, (640,), generator=g)),
            "test": (torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))}  # fmt: skip
    monkeypatch.setattr(speedrun, "load_images", lambda *a, **k: tiny)
    shapes = []
    real_fit, real_evaluate = speedrun.fit, speedrun.evaluate

    def fit(model, opt, loss_fn, batches, **kwargs):
        shapes.append(tuple(batches.X.shape[1:]))
        return real_fit(model, opt, loss_fn, batches, **kwargs)

    def evaluate(model, loss_fn, X, y, **kwargs):
        shapes.append(tuple(X.shape[1:]))
        return real_evaluate(model, loss_fn, X, y, **kwargs)

    monkeypatch.setattr(speedrun, "fit", fit)
    monkeypatch.setattr(speedrun, "evaluate", evaluate)
    result = speedrun.mnist(torch.device("cpu"), widths=(4, 8, 8))
    recipe = result["recipe"]
    assert recipe["amp"] is bf16_is_fast("cpu") and recipe["widths"] == (4, 8, 8)
    # The central 20×20 pixels, for training and test alike.
    assert recipe["crop"] == 4 and shapes == [(1, 20, 20), (1, 20, 20)]
    assert 0.0 <= result["test_acc"] <= 1.0 and result["seconds"] > 0


def test_airbench_network_whitening_and_a_short_run(monkeypatch):
    import airbench
    import speedrun

    from dlnotes.env import bf16_is_fast
    from dlnotes.models import n_params

    torch.manual_seed(0)
    net = airbench.net()
    # The paper's network: about 1.97 million weights, the whitening layer's frozen.
    assert 1_950_000 < n_params(net) < 2_000_000 and not net[0].weight.requires_grad
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # Whitening: the 2×2 patches of correlated images come out with unit variance and no
    # correlation along each of the 12 directions (the other 12 channels are their negatives).
    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 1, 32, 32, generator=g)
    images = torch.cat([base, 0.5 * base + 0.1 * torch.randn(64, 2, 32, 32, generator=g)], 1)
    airbench.whiten(net[0], images, eps=0.0)
    out = torch.nn.functional.conv2d(images, net[0].weight)[:, :12]  # (N, 12, 31, 31)
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    cov = flat @ flat.T / flat.shape[1]
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)
    assert torch.equal(net[0].weight[12:], -net[0].weight[:12])

    # A shortened run on tiny data: it trains, reports its precision, and scores six views.
    tiny = {"train": (torch.randn(2048, 3, 32, 32, generator=g), torch.randint(0, 10, (2048,), generator=g)),
            "test": (torch.randn(100, 3, 32, 32, generator=g), torch.randint(0, 10, (100,), generator=g))}  # fmt: skip
    monkeypatch.setattr(airbench, "load_images", lambda *a, **k: tiny)
    monkeypatch.setattr(airbench, "HYP", airbench.HYP | {"widths": (8, 16, 16)})
    result = airbench.train(torch.device("cpu"), epochs=2)
    assert result["steps"] == 4 and 0.0 <= result["test_acc"] <= 1.0
    assert result["precision"] == ("bf16 autocast" if bf16_is_fast("cpu") else "float32")

    # Chapter 02's speed recipe at `full`, for the CIFAR-10 comparison, on the same tiny data.
    monkeypatch.setattr(speedrun, "load_images", lambda *a, **k: tiny)
    result = speedrun.cifar10(torch.device("cpu"), width=4, epochs=1)
    assert result["recipe"]["batch_size"] == 256 and 0.0 <= result["test_acc"] <= 1.0


def test_chapter_02s_speed_network_is_the_one_the_benchmark_runs():
    """bench/speedrun.py runs chapter 02's section-6 recipe outside the notebook: the chapter's
    own cell must build the same network (a change to one fails here until the other follows)."""
    import ast

    import speedrun

    source = (Path(__file__).resolve().parents[1] / "notebooks" / "02_cnn.py").read_text()
    tree = ast.parse(source)
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "speed_cnn"]
    scope = {"nn": torch.nn}
    exec(compile(ast.Module([node], []), "02_cnn.py", "exec"), scope)
    chapter, bench = scope["speed_cnn"](8), speedrun.cifar_cnn(8)
    assert [repr(m) for m in chapter] == [repr(m) for m in bench]
    for hyper, value in {"epochs": 10, "width": 64}.items():  # the chapter's `full` profile
        key = {"epochs": "SPEED_EPOCHS", "width": "SPEED_WIDTH"}[hyper]
        assert f'"{key}": {value}' in source.split('"full"', 1)[1].split("}", 1)[0]
        assert speedrun.CIFAR_RECIPE[hyper] == value
