import torch
from torch import nn

from dlnotes.train import accuracy, binary_accuracy, evaluate, fit


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (X[:, :1] * X[:, 1:] > 0).float()  # XOR-like: needs a hidden layer
    return X, y


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))


def test_accuracies():
    assert binary_accuracy(torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [1.0]])) == 0.5
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == 0.5


def test_fit_overfits_a_small_set_and_records_history():
    X, y = _data()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    history = fit(
        model,
        opt,
        nn.BCEWithLogitsLoss(),
        X,
        y,
        epochs=300,
        metric=binary_accuracy,
        val=(X, y),
        progress=False,
    )
    assert len(history["train_loss"]) == len(history["val_metric"]) == 300
    assert history.last("train_loss") < 0.2 * history["train_loss"][0]
    assert history.last("val_metric") > 0.95


def test_fit_calls_hooks_once_per_step_and_epoch():
    X, y = _data(n=40)
    model = _model()
    steps, epochs = [], []
    fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        nn.BCEWithLogitsLoss(),
        X,
        y,
        epochs=3,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
        progress=False,
        after_backward=lambda step, m: steps.append((step, m[0].weight.grad is not None)),
        on_epoch_end=lambda epoch, m, h: epochs.append((epoch, len(h["train_loss"]))),
    )
    assert steps == [(i, True) for i in range(9)]  # 3 batches (16, 16, 8) per epoch
    assert epochs == [(0, 1), (1, 2), (2, 3)]


def test_fit_is_deterministic_under_a_seed():
    X, y = _data()
    losses = []
    for _ in range(2):
        model = _model(seed=1)
        history = fit(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            nn.BCEWithLogitsLoss(),
            X,
            y,
            epochs=4,
            batch_size=8,
            generator=torch.Generator().manual_seed(5),
            progress=False,
        )
        losses.append(history["train_loss"])
    assert losses[0] == losses[1]


def test_evaluate_matches_full_batch_loss_and_restores_mode():
    X, y = _data(n=100)
    model = _model().train()
    loss_fn = nn.BCEWithLogitsLoss()
    loss, acc = evaluate(model, loss_fn, X, y, metric=binary_accuracy, batch_size=7)
    with torch.no_grad():
        expected = loss_fn(model(X), y).item()
    assert abs(loss - expected) < 1e-5 and 0 <= acc <= 1
    assert model.training
