import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlnotes.state import checkpoint_file
from dlnotes.train import (
    Batches,
    History,
    accuracy,
    binary_accuracy,
    evaluate,
    fit,
    frechet_distance,
    predict,
    random_crop_flip,
    warmup_cosine,
)


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (X[:, :1] * X[:, 1:] > 0).float()  # XOR-like: needs a hidden layer
    return X, y


def _model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


def test_accuracies():
    assert binary_accuracy(torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [1.0]])) == 0.5
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == 0.5


def test_fit_overfits_a_small_set_and_records_history():
    X, y = _data()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    history = fit(model, opt, nn.BCEWithLogitsLoss(), (X, y), epochs=300,
                  metric=binary_accuracy, val=(X, y), progress=False)  # fmt: skip
    assert len(history["train_loss"]) == len(history["val_metric"]) == 300
    assert history.last("train_loss") < 0.2 * history["train_loss"][0]
    assert history.last("val_metric") > 0.95
    assert history["seconds"] == sorted(history["seconds"]) and history.last("seconds") > 0


def test_fit_calls_hooks_once_per_step_and_epoch():
    X, y = _data(n=40)
    model = _model()
    steps, ends, epochs = [], [], []
    fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.BCEWithLogitsLoss(),
        (X, y),
        epochs=3,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
        progress=False,
        after_backward=lambda step, m: steps.append((step, m[0].weight.grad is not None)),
        on_step_end=lambda step, m, loss: ends.append((step, loss.requires_grad)),
        on_epoch_end=lambda epoch, m, h: epochs.append((epoch, len(h["train_loss"]))),
    )
    assert steps == [(i, True) for i in range(9)]  # 3 batches (16, 16, 8) per epoch
    assert ends == [(i, False) for i in range(9)]
    assert epochs == [(0, 1), (1, 2), (2, 3)]


def test_fit_is_deterministic_under_a_seed():
    X, y = _data()
    curves = []
    for _ in range(2):
        model = _model(seed=1, dropout=0.2)
        history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(),
                      (X, y), epochs=4, batch_size=8, metric=binary_accuracy, val=(X, y),
                      generator=torch.Generator().manual_seed(5), progress=False)  # fmt: skip
        curves.append({k: v for k, v in history.curves.items() if k != "seconds"})
    assert curves[0] == curves[1]


def test_batches_cover_every_sample_once_per_epoch_in_a_new_order():
    X = torch.arange(103).float()[:, None]
    batches = Batches(
        X, torch.arange(103), batch_size=10, generator=torch.Generator().manual_seed(0)
    )
    assert len(batches) == 11
    orders = []
    for _ in range(2):
        seen = [(xb[:, 0].long(), yb) for xb, yb in batches]
        assert [len(yb) for _, yb in seen] == [10] * 10 + [3]
        assert all(torch.equal(xs, yb) for xs, yb in seen)  # rows stay paired with labels
        order = torch.cat([yb for _, yb in seen])
        assert sorted(order.tolist()) == list(range(103))
        orders.append(order)
    assert not torch.equal(orders[0], orders[1])
    dropped = Batches(X, torch.arange(103), batch_size=10, drop_last=True)
    assert len(dropped) == 10 and sum(len(yb) for _, yb in dropped) == 100
    with pytest.raises(ValueError, match="103 rows but y has 5"):
        Batches(X, torch.arange(5), batch_size=10)


def test_random_crop_flip_translates_each_image_and_keeps_labels_aligned():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(64, 3, 8, 8, generator=g)
    out = random_crop_flip(X, g, pad=2)
    assert out.shape == X.shape and out.dtype == X.dtype
    padded = nn.functional.pad(X, (2, 2, 2, 2))
    shifts = set()
    for i in range(len(X)):  # each output is one shifted window of its own image, maybe mirrored
        windows = {
            (dy, dx): padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)
        }
        matches = [(key, f) for key, w in windows.items() for f in (False, True)
                   if torch.equal(out[i], w.flip(-1) if f else w)]  # fmt: skip
        assert matches, f"image {i} is not a crop of its own source"
        shifts.add(matches[0][0])
        shifts.add(("flip", matches[0][1]))
    assert len(shifts) > 10 and {("flip", True), ("flip", False)} <= shifts
    assert torch.equal(random_crop_flip(X, g, pad=0, flip=False), X)


def test_random_crop_flip_crops_a_smaller_window_of_each_image():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(32, 3, 9, 9, generator=g)
    out = random_crop_flip(X, g, pad=0, size=6)
    assert out.shape == (32, 3, 6, 6)
    offsets = set()
    for i in range(len(X)):
        found = [(dy, dx) for dy in range(4) for dx in range(4) for f in (False, True)
                 if torch.equal(out[i], X[i, :, dy : dy + 6, dx : dx + 6].flip(-1) if f
                                else X[i, :, dy : dy + 6, dx : dx + 6])]  # fmt: skip
        assert found, f"image {i} is not a window of its own source"
        offsets.add(found[0])
    assert len(offsets) > 5
    with pytest.raises(ValueError, match="cannot crop 12×12 from 9×9"):
        random_crop_flip(X, g, pad=0, size=12)


def test_frechet_distance_is_zero_for_one_set_and_the_squared_shift_for_a_moved_one():
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=rng).double().numpy()
    assert frechet_distance(a, a) < 1e-4
    # Same covariance, mean moved by (1, 2, 0): the distance is |shift|^2 = 5.
    assert abs(frechet_distance(a, a + [1.0, 2.0, 0.0]) - 5.0) < 1e-3
    # Different spread: N(0, I) against N(0, 4I) in 3 dimensions gives 3 * (1 + 4 - 2*2) = 3.
    b = 2 * torch.randn(4000, 3, generator=rng).double().numpy()
    assert abs(frechet_distance(a, b) - 3.0) < 0.4


def test_batches_apply_augmentation_on_the_device_batch():
    X = torch.arange(20).float().view(20, 1, 1, 1).expand(20, 1, 4, 4).clone()
    seen = 0
    for xb, yb in Batches(X, torch.arange(20), batch_size=6, augment=random_crop_flip):
        assert xb.shape[1:] == (1, 4, 4)
        for img, label in zip(xb, yb, strict=True):  # any non-zero pixel is the image's own value
            assert set(img.unique().tolist()) <= {0.0, float(label)}
        seen += len(yb)
    assert seen == 20


def _resumable_run(tmp_path, name, interrupt_at=None):
    X, y = _data(n=96, seed=3)
    model = _model(seed=2, dropout=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sched = warmup_cosine(opt, total_steps=4 * 6, warmup_steps=3)
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)
    )

    def boom(step, m, loss):
        if step == interrupt_at:
            raise KeyboardInterrupt

    return fit(model, opt, nn.BCEWithLogitsLoss(), (X, y), epochs=4, batch_size=16,
               val=(X, y), metric=binary_accuracy, scheduler=sched, ema=ema, clip_grad=1.0,
               generator=torch.Generator().manual_seed(7), checkpoint=tmp_path / name,
               on_step_end=boom, progress=False), model, ema  # fmt: skip


def test_resume_after_an_interrupted_epoch_reproduces_the_uninterrupted_run(tmp_path):
    full, model_a, ema_a = _resumable_run(tmp_path, "a.pt")
    with pytest.raises(KeyboardInterrupt):
        _resumable_run(tmp_path, "b.pt", interrupt_at=15)  # inside epoch 3 of 4
    assert torch.load(tmp_path / "b.pt", weights_only=False)["epoch"] == 2
    resumed, model_b, ema_b = _resumable_run(tmp_path, "b.pt")
    for a, b in zip([*model_a.parameters(), *ema_a.parameters()],
                    [*model_b.parameters(), *ema_b.parameters()], strict=True):  # fmt: skip
        assert torch.equal(a, b)
    assert resumed["train_loss"] == full["train_loss"]
    assert resumed["val_metric"] == full["val_metric"]
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written checkpoint left behind


def test_a_finished_checkpoint_is_loaded_not_retrained(tmp_path):
    path = checkpoint_file("net", {"lr": 0.1, "epochs": 3}, code=[_model], root=tmp_path)
    assert path != checkpoint_file("net", {"lr": 0.2, "epochs": 3}, code=[_model], root=tmp_path)
    assert path == checkpoint_file("net", {"epochs": 3, "lr": 0.1}, code=[_model], root=tmp_path)
    X, y = _data()
    trained = _model()
    first = fit(trained, torch.optim.SGD(trained.parameters(), lr=0.1), nn.BCEWithLogitsLoss(),
                (X, y), epochs=3, checkpoint=path, progress=False)  # fmt: skip
    fresh, calls = _model(seed=9), []
    again = fit(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), nn.BCEWithLogitsLoss(),
                (X, y), epochs=3, checkpoint=path, progress=False,
                on_step_end=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [] and again.curves == first.curves
    assert all(
        torch.equal(a, b) for a, b in zip(trained.parameters(), fresh.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="holds 3 epochs, more than 2"):
        fit(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), nn.BCEWithLogitsLoss(), (X, y),
            epochs=2, checkpoint=path, progress=False)  # fmt: skip


def test_on_epoch_end_can_stop_early_and_a_rerun_stays_stopped(tmp_path):
    X, y = _data()
    model = _model()
    kwargs = dict(epochs=10, checkpoint=tmp_path / "c.pt", progress=False,
                  on_epoch_end=lambda epoch, m, h: epoch == 2)  # fmt: skip
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(),
                  (X, y), **kwargs)  # fmt: skip
    assert len(history["train_loss"]) == 3
    again = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(),
                (X, y), **kwargs)  # fmt: skip
    assert len(again["train_loss"]) == 3


def test_fit_accepts_a_dataloader():
    X, y = _data(n=128)
    model = _model()
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    history = fit(model, torch.optim.Adam(model.parameters(), lr=0.05), nn.BCEWithLogitsLoss(),
                  loader, epochs=60, metric=binary_accuracy, progress=False)  # fmt: skip
    assert history.last("train_loss") < 0.5 * history["train_loss"][0]


def test_warmup_cosine_rises_then_decays_to_the_floor():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=20, warmup_steps=5, floor=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = lrs.index(max(lrs))
    assert lrs[0] < 0.01 and peak == 5 and abs(lrs[peak] - 1.0) < 1e-6
    assert lrs[peak:] == sorted(lrs[peak:], reverse=True) and lrs[-1] >= 0.1


def test_evaluate_matches_full_batch_loss_and_restores_mode():
    X, y = _data(n=100)
    model = _model().train()
    loss_fn = nn.BCEWithLogitsLoss()
    loss, acc = evaluate(model, loss_fn, X, y, metric=binary_accuracy, batch_size=7)
    with torch.no_grad():
        expected = loss_fn(model(X), y).item()
    assert abs(loss - expected) < 1e-5 and 0 <= acc <= 1
    assert model.training


def test_predict_with_flip_averages_an_image_and_its_mirror():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    X = torch.randn(5, 1, 3, 4)
    with torch.no_grad():
        expected = (model(X) + model(X.flip(-1))) / 2
    assert torch.allclose(predict(model, X, flip=True, batch_size=2), expected, atol=1e-6)


def test_history_add_and_last():
    h = History()
    h.add(a=1.0, b=2.0)
    h.add(a=3.0)
    assert h["a"] == [1.0, 3.0] and h.last("b") == 2.0 and "a" in h and "c" not in h


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_fit_names_a_damaged_checkpoint_moves_it_aside_and_retrains(tmp_path, capsys, damage):
    X, y = _data()
    path = tmp_path / "net.pt"
    reference = _model()
    expected = fit(reference, torch.optim.SGD(reference.parameters(), lr=0.1),
                   nn.BCEWithLogitsLoss(), (X, y), epochs=3, progress=False)  # fmt: skip
    model = _model()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss(), (X, y),
        epochs=3, checkpoint=path, progress=False)  # fmt: skip
    path.write_bytes(path.read_bytes()[:100] if damage == "truncated" else b"")
    fresh, calls = _model(), []
    again = fit(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), nn.BCEWithLogitsLoss(),
                (X, y), epochs=3, checkpoint=path, progress=False,
                on_step_end=lambda *a: calls.append(a))  # fmt: skip
    assert f"checkpoint {path} is unusable" in capsys.readouterr().out
    assert len(calls) == 3 and again["train_loss"] == expected["train_loss"]  # retrained in full
    assert (tmp_path / "net.pt.corrupt").exists()
    assert torch.load(path, weights_only=False)["epoch"] == 3  # a new, good checkpoint
