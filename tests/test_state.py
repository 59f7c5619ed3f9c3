"""Training state: code-keyed checkpoint files, save and load, best weights."""

import numpy as np
import pytest
import torch
from torch import nn

from dlnotes.models import Judge, lenet5, n_params
from dlnotes.state import BestWeights, checkpoint_file, code_digest, load_state, save_state
from dlnotes.train import History


def _source(tmp_path, text):
    """Define functions as a notebook cell would (module __main__), with their source on disk."""
    path = tmp_path / "cell.py"
    path.write_text(text)
    namespace = {"__name__": "__main__"}
    exec(compile(text, str(path), "exec"), namespace)
    return namespace


CELL = """
import torch
from torch import nn

WIDTH = 4

def block(n):
    return nn.Linear(n, WIDTH)

def build():
    return nn.Sequential(block(2), nn.ReLU())

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = build()

    def forward(self, x):
        return self.body(x)
"""


def test_code_digest_follows_what_the_code_calls(tmp_path):
    import linecache

    first = _source(tmp_path, CELL)
    digest = code_digest(first["build"])
    assert code_digest(first["Net"]) != digest
    # A helper the entry point calls, and a constant that helper reads, change the key.
    for k, (old, new) in enumerate(
        [("nn.Linear(n, WIDTH)", "nn.Linear(n, WIDTH, bias=False)"), ("WIDTH = 4", "WIDTH = 5")]
    ):
        linecache.clearcache()
        (tmp_path / str(k)).mkdir()
        changed = _source(tmp_path / str(k), CELL.replace(old, new))
        assert code_digest(changed["build"]) != digest, old
    # Library code (torch) and comments elsewhere do not.
    same = tmp_path / "same"
    same.mkdir()
    assert code_digest(_source(same, CELL + "\n# a comment\n")["build"]) == digest


def test_checkpoint_file_depends_on_config_and_code(tmp_path):
    cell = _source(tmp_path, CELL)
    a = checkpoint_file("run", {"lr": 0.1}, code=[cell["build"]], root=tmp_path)
    assert a == checkpoint_file("run", {"lr": 0.1}, code=[cell["build"]], root=tmp_path)
    assert a != checkpoint_file("run", {"lr": 0.2}, code=[cell["build"]], root=tmp_path)
    assert a != checkpoint_file("run", {"lr": 0.1}, code=[cell["Net"]], root=tmp_path)
    assert a.parent == tmp_path and a.name.startswith("run-") and a.suffix == ".pt"


def test_save_and_load_state_round_trip_with_generators(tmp_path):
    model, path = nn.Linear(3, 2), tmp_path / "state.pt"
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g, rng = torch.Generator().manual_seed(1), np.random.default_rng(2)
    save_state(path, model=model, opt=opt, epoch=3, history={"a": [1.0]},
               generators={"g": g, "rng": rng})  # fmt: skip
    expected = (torch.rand(2, generator=g), rng.random(2), torch.rand(2))
    other, g2, rng2 = nn.Linear(3, 2), torch.Generator(), np.random.default_rng(0)
    saved = load_state(path, model=other, generators={"g": g2, "rng": rng2})
    assert saved["epoch"] == 3 and saved["history"] == {"a": [1.0]}
    assert torch.equal(other.weight, model.weight)
    assert torch.equal(torch.rand(2, generator=g2), expected[0])
    assert np.array_equal(rng2.random(2), expected[1]) and torch.equal(torch.rand(2), expected[2])
    assert load_state(tmp_path / "missing.pt", model=other) is None


@pytest.mark.parametrize("damage", ["truncated", "empty", "wrong shapes"])
def test_an_unusable_checkpoint_is_named_moved_aside_and_ignored(tmp_path, capsys, damage):
    path = tmp_path / "run-abc.pt"
    save_state(path, model=nn.Linear(3, 2), epoch=1)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:50])
    elif damage == "empty":
        path.write_bytes(b"")
    target = nn.Linear(5, 2) if damage == "wrong shapes" else nn.Linear(3, 2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    assert load_state(path, model=target) is None
    # Nothing half-loaded: the bias fits in shape, yet stays as it was.
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())
    out = capsys.readouterr().out
    assert f"checkpoint {path} is unusable" in out and "training afresh" in out
    assert not path.exists() and (tmp_path / "run-abc.pt.corrupt").exists()


def test_best_weights_keep_the_best_epoch_and_stop_after_patience(tmp_path):
    best, model = BestWeights(tmp_path / "best.pt", patience=2), nn.Linear(2, 1)
    history = History()
    stops = []
    for epoch, acc in enumerate([0.5, 0.7, 0.7, 0.6, 0.8]):
        with torch.no_grad():
            model.weight.fill_(epoch)
        history.add(val_metric=acc)
        stops.append(best(epoch, model, history))
    # 0.7 at epoch 2 ties, so it is no improvement: two epochs without one stop the run.
    assert stops == [False, False, False, True, False]
    fresh = nn.Linear(2, 1)
    assert best.restore(fresh) == 5 and float(fresh.weight[0, 0].detach()) == 4.0


def test_lost_best_weights_move_the_run_checkpoint_aside(tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"finished run")
    best = BestWeights(tmp_path / "run.best.pt", checkpoint=checkpoint)
    (tmp_path / "run.best.pt").write_bytes(b"")
    with pytest.raises(RuntimeError, match="running again trains it afresh"):
        best.restore(nn.Linear(2, 1))
    assert not checkpoint.exists() and (tmp_path / "run.pt.corrupt").exists()


def test_shared_models_have_their_published_sizes():
    assert n_params(lenet5()) == 61_706
    assert lenet5()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    digits, photos = Judge(1, 10, size=28), Judge(3, 2, widths=(16, 32))
    assert digits(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert digits.features(torch.zeros(2, 1, 28, 28)).shape == (2, 64)
    assert photos(torch.zeros(2, 3, 40, 40)).shape == (2, 2)
