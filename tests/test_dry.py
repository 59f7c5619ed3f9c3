"""Dry runs (a profile's shapes, a few batches per pass) and the estimate made from them."""

import json
import textwrap
from datetime import datetime, timezone

import nbformat
import pytest

from dlnotes.params import ParameterError
from dlnotes.runner import dry
from dlnotes.runner.chapter import Chapter, ChapterError
from dlnotes.runner.cli import main
from dlnotes.runner.execute import run_chapter

TRAINING_CHAPTER = """\
# %% [markdown]
# # A chapter that trains

# %% tags=["parameters"]
PROFILE = "quick"  # smoke | quick | full
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0  # random seed [0, 4294967295]
ROWS = None  # training rows [16, 100000]
EPOCHS = None  # epochs [1, 100]

# %%
PROFILES = {"smoke": {"ROWS": 64, "EPOCHS": 1}, "quick": {"ROWS": 320, "EPOCHS": 2},
            "full": {"ROWS": 1600, "EPOCHS": 3}}
from dlnotes.params import from_profile

(ROWS, EPOCHS) = from_profile(PROFILES, PROFILE, ROWS=ROWS, EPOCHS=EPOCHS)

# %% [markdown]
# ## Training

# %%
import torch
from torch import nn

from dlnotes.report import publish
from dlnotes.state import checkpoint_file
from dlnotes.train import Batches, evaluate, fit, predict

torch.manual_seed(SEED)
X, y = torch.randn(ROWS, 8), torch.randint(0, 2, (ROWS,))
model = nn.Linear(8, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
seen = []
path = checkpoint_file("01_train", {"rows": ROWS, "epochs": EPOCHS})
history = fit(model, opt, nn.functional.cross_entropy,
              Batches(X, y, 16, generator=torch.Generator().manual_seed(SEED)),
              epochs=EPOCHS, checkpoint=path, progress=False,
              on_step_end=lambda step, m, loss: seen.append(step))

# %% [markdown]
# ## Scoring

# %%
from torch.utils.data import DataLoader, TensorDataset

loader = DataLoader(TensorDataset(X, y), batch_size=32)
loader_batches = sum(1 for _ in loader)
out = predict(model, X, batch_size=100)
loss, _ = evaluate(model, nn.functional.cross_entropy, X, y, batch_size=100)
publish(steps=len(seen), epochs=len(history["train_loss"]), rows=out.shape[0],
        loader_batches=loader_batches, loader_len=len(loader),
        checkpoint_written=int(path.exists()), finite=int(bool(torch.isfinite(out).all())))
"""


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    """A throw-away project with one chapter that trains with the engine, and its own cache."""
    monkeypatch.delenv("DLNOTES_MIRROR", raising=False)
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path / "cache"))
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "notebooks" / "01_train.py").write_text(textwrap.dedent(TRAINING_CHAPTER))
    return tmp_path


def _placeholders(report):
    return json.loads(Chapter.metrics_for(report).read_text())


def test_a_dry_run_keeps_shapes_and_epochs_and_cuts_every_pass(trainer):
    result = run_chapter(trainer, "01", profile="full", device="cpu", progress=False, dry_run=2)
    chapter = Chapter(trainer, "01")
    assert result.report == trainer / "build" / "dry" / "01_train.ipynb"
    assert not chapter.report.exists()  # the book's report is never written by a dry run
    # 1,600 rows in batches of 16 are 100 batches an epoch; a dry run takes 2 of each of 3.
    # A DataLoader's pass is cut too, and both say so in len(); predictions keep their shape.
    assert result.metrics == {"steps": 6, "epochs": 3, "rows": 1600, "checkpoint_written": 1,
                              "finite": 1, "loader_batches": 2, "loader_len": 2}  # fmt: skip
    written = _placeholders(result.report)
    assert written["placeholders"] is True and written["dry_run_steps"] == 2
    assert written["metrics"] == result.metrics
    # Its checkpoints went to a throw-away folder, not to the cache.
    assert not (trainer / "cache" / "checkpoints").exists()
    notebook = nbformat.read(result.report, as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and "placeholder" in notebook.cells[0].source
    assert notebook.metadata["dlnotes"]["dry_run"]["steps"] == 2
    assert not any("_dry_install" in c.source for c in notebook.cells)

    # The estimate: one line per section, the training section's passes found in it.
    forecast = result.estimate
    sections = {s["section"]: s for s in forecast["sections"]}
    assert sections["Training"]["passes"] == 3 and sections["Scoring"]["passes"] == 3
    assert sections["Training"]["training_s"] > 0 and forecast["passes"] == 6
    passes = result.report.with_suffix(".passes.jsonl").read_text().splitlines()
    assert [json.loads(line)["real"] for line in passes] == [100, 100, 100, 50, 1600, 1600]
    # The first prediction computes one whole batch; the second, same model and shape, 2 rows.
    assert [json.loads(line)["done"] for line in passes][-2:] == [100, 2]
    assert forecast["estimate_s"] == pytest.approx(sum(s["estimate_s"] for s in sections.values()))

    # The real run of the same profile takes every batch, and writes the cache's checkpoint.
    real = run_chapter(trainer, "01", profile="full", device="cpu", progress=False)
    assert real.report == chapter.report and real.metrics["steps"] == 300
    assert real.metrics["loader_batches"] == real.metrics["loader_len"] == 50
    assert real.estimate is None and "placeholders" not in json.loads(chapter.metrics.read_text())
    assert len(list((trainer / "cache" / "checkpoints").glob("01_train-*.pt"))) == 1


def test_the_cli_prints_an_estimate_per_section(trainer, monkeypatch, capsys):
    monkeypatch.chdir(trainer)
    status = main(["run", "01", "--profile", "smoke", "--estimate", "--steps", "3",
                   "--no-progress", "--device", "cpu"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "placeholder metrics, dry run" in out
    assert "01_train at smoke on cpu" in out and "Training" in out and "Scoring" in out
    assert _placeholders(trainer / "build" / "dry" / "01_train.ipynb")["metrics"]["steps"] == 3


@pytest.mark.parametrize(
    "args, match",
    [
        (["--steps", "2"], "--steps is for a dry run"),
        (["--dry-run", "--steps", "0"], "--steps must be at least 1"),
        (["--estimate", "--steps", "-3"], "--steps must be at least 1"),
        (["--max-epochs", "2"], "--max-epochs is for a dry run"),
        (["--dry-run", "--max-epochs", "0"], "--max-epochs must be at least 1"),
    ],
)
def test_cli_refuses_bad_dry_run_options(trainer, monkeypatch, capsys, args, match):
    monkeypatch.chdir(trainer)
    assert main(["run", "01", "--profile", "smoke", *args]) == 2
    assert match in capsys.readouterr().err
    assert not (trainer / "build" / "dry").exists()


def test_a_dry_run_never_writes_the_books_report(trainer):
    chapter = Chapter(trainer, "01")
    with pytest.raises(ChapterError, match="never replace it"):
        run_chapter(trainer, "01", profile="smoke", output=chapter.report, dry_run=2)
    with pytest.raises(ParameterError, match="at least 1"):
        run_chapter(trainer, "01", profile="smoke", dry_run=0)
    assert not chapter.report.exists()


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def test_the_estimate_replaces_shortened_passes_with_whole_ones(tmp_path):
    # Two sections; the second's cell ran 10 s, of which one shortened pass took
    # 0.5 (making the first batch) + 1.0 (its first step) + 2 × 0.25; the whole pass has 101
    # batches, so it would take 0.5 + 1.0 + 100 × 0.25 = 26.5 s, and the cell 10 - 2 + 26.5.
    # A prediction of 100 of 1,000 rows took 0.2 s; its log says 2 s whole.
    t = 1_000_000.0
    nb = nbformat.v4.new_notebook()
    cells = [
        nbformat.v4.new_markdown_cell("## One"),
        nbformat.v4.new_code_cell("a"),
        nbformat.v4.new_markdown_cell("text\n## Two"),
        nbformat.v4.new_code_cell("b"),
    ]
    cells[1].metadata["papermill"] = {"start_time": _stamp(t), "end_time": _stamp(t + 3)}
    cells[3].metadata["papermill"] = {"start_time": _stamp(t + 3), "end_time": _stamp(t + 13)}
    nb.cells = cells
    log = tmp_path / "passes.jsonl"
    entries = [
        {"kind": "train", "start": t + 4, "end": t + 6, "real": 101, "done": 3, "setup": 0.5,
         "times": [1.0, 0.25, 0.25]},
        {"kind": "predict", "start": t + 7, "end": t + 7.2, "real": 1000, "done": 100,
         "seconds": 0.2, "whole": 2.0},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    forecast = dry.estimate(nb, log)
    one, two = forecast["sections"]
    assert one == {"section": "One", "dry_s": 3.0, "estimate_s": 3.0, "training_s": 0.0,
                   "passes": 0}  # fmt: skip
    assert two["section"] == "Two" and two["passes"] == 2
    assert two["training_s"] == pytest.approx(26.5 + 2.0)
    assert two["estimate_s"] == pytest.approx(10 - 2.0 - 0.2 + 26.5 + 2.0)
    assert forecast["estimate_s"] == pytest.approx(3.0 + two["estimate_s"])
    text = dry.format_estimate("01_x", "full", "cpu", forecast)
    assert "about 39 s" in text and "Two" in text


HAND_LOOP_CHAPTER = """\
# %% tags=["parameters"]
PROFILE = "quick"  # smoke | quick | full
DEVICE = "auto"  # auto | cpu | cuda
ROWS = None  # rows [10, 100000]
EPOCHS = None  # epochs [1, 100]

# %%
from dlnotes.params import from_profile

(ROWS, EPOCHS) = from_profile({"smoke": {"ROWS": 100, "EPOCHS": 1},
                               "quick": {"ROWS": 500, "EPOCHS": 2},
                               "full": {"ROWS": 1000, "EPOCHS": 4}}, PROFILE,
                              ROWS=ROWS, EPOCHS=EPOCHS)

# %% [markdown]
# ## A loop written by hand

# %%
import numpy as np

from dlnotes.report import publish
from dlnotes.train import batch_slices

X = np.arange(ROWS, dtype=float)
passes, kept, rows = batch_slices(ROWS, 64, drop_last=True), [], 0
for epoch in range(EPOCHS):  # the chapter's own loop: every epoch runs unless capped
    for part in passes:
        rows += len(X[part])
    kept.append(len(passes))
import torch

from dlnotes.train import predict

lin = torch.nn.Linear(3, 2)
out = predict(lin, torch.zeros(ROWS, 3), batch_size=1000)
seen = []  # a forward hook sees every row of a small prediction, even a later one
lin.register_forward_hook(lambda module, args, result: seen.append(len(result)))
predict(lin, torch.zeros(10, 3), batch_size=1000)
publish(epochs=len(kept), planned=kept[0], rows=rows, predicted=len(out), hooked=sum(seen))
"""


def test_batch_slices_cover_the_rows_once(trainer):
    from dlnotes.train import batch_slices

    parts = batch_slices(10, 4)
    assert parts == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert batch_slices(10, 4, drop_last=True) == parts[:2] and batch_slices(0, 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        batch_slices(10, 0)


def test_a_dry_run_cuts_a_hand_written_loop_and_probes_a_cpu_prediction(trainer):
    (trainer / "notebooks" / "02_hand.py").write_text(HAND_LOOP_CHAPTER)
    # 1,000 rows in whole batches of 64: 15 a pass. The dry run keeps the 4 epochs and takes
    # 2 batches of each, and the pass says so in len(); the real run takes all of them. A
    # prediction on the CPU computes CPU_PROBE_ROWS rows of its batch of 1,000, not all; one
    # of 10 rows, all 10.
    result = run_chapter(trainer, "02", profile="full", device="cpu", progress=False, dry_run=2)
    assert result.metrics == {"epochs": 4, "planned": 2, "rows": 4 * 2 * 64, "predicted": 1000,
                              "hooked": 10}  # fmt: skip
    passes = [json.loads(line) for line in
              result.report.with_suffix(".passes.jsonl").read_text().splitlines()]  # fmt: skip
    assert [(p["real"], p["done"]) for p in passes] == [(15, 2)] * 4 + [
        (1000, dry.CPU_PROBE_ROWS),
        (10, 10),
    ]
    assert result.estimate["sections"][-1]["passes"] == 6
    real = run_chapter(trainer, "02", profile="full", device="cpu", progress=False)
    assert real.metrics == {"epochs": 4, "planned": 15, "rows": 4 * 15 * 64, "predicted": 1000,
                            "hooked": 10}  # fmt: skip


def test_a_dry_run_can_cap_every_epoch_count_and_says_so(trainer, monkeypatch, capsys):
    (trainer / "notebooks" / "02_hand.py").write_text(HAND_LOOP_CHAPTER)
    monkeypatch.chdir(trainer)
    status = main(["run", "02", "--profile", "full", "--dry-run", "--steps", "1",
                   "--max-epochs", "3", "--no-progress", "--device", "cpu", "--estimate"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    written = _placeholders(trainer / "build" / "dry" / "02_hand.ipynb")
    # EPOCHS 4 → 3 (ROWS is no epoch count and keeps its 1,000): 3 cut passes of 1 batch.
    assert written["metrics"] == {"epochs": 3, "planned": 1, "rows": 3 * 64, "predicted": 1000,
                                  "hooked": 10}  # fmt: skip
    assert written["dry_run_max_epochs"] == 3 and written["estimate"]["capped"] == {
        "EPOCHS": [4, 3]
    }
    assert "epoch counts capped (EPOCHS 4 → 3)" in out
    report = nbformat.read(trainer / "build" / "dry" / "02_hand.ipynb", as_version=4)
    assert "every epoch count capped at 3" in report.cells[0].source
