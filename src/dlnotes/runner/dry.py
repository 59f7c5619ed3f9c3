"""Dry runs and time estimates: a chapter at a profile's real shapes, a few steps per pass.

``dlnotes run CH --profile full --dry-run`` executes the chapter as it is, with the profile's
image sizes, widths, sequence lengths, batch sizes and whole datasets in memory, but every pass
over a ``Batches`` or a ``DataLoader`` stops after ``steps`` batches, and every ``predict`` (and
so ``evaluate``) computes one batch at its real size (on a CPU at most ``CPU_PROBE_ROWS`` rows;
later calls for the same model and shape, such as an evaluation every epoch, only ``steps``
rows) and repeats it to the input's length.
A shortened pass has that many batches as its ``len()`` too, so code that plans by it
(snapshot steps, a schedule's length) sees what it will get. Epoch counts are kept, so every
hook, table and figure of the chapter is exercised, unless ``max_epochs`` caps them (through
``from_profile``). The
report goes to ``build/dry/``, never to the book; its checkpoints to a temporary folder, never
to the cache; its first cell and its metrics file say that every number is a placeholder.

``--estimate`` adds a prediction of the real run's wall time on this device, per section:
each cell's dry wall time, less the time its shortened passes took, plus what the whole passes
would take (the first batch as measured, each further one at the median of the measured ones;
a ``predict`` at the rate per row of its first whole batch).

Why patches installed by a first cell rather than a switch inside ``fit``: the source of
``fit`` and of what it calls is part of every checkpoint key (:func:`dlnotes.state.code_digest`),
so a dry-run branch there would retrain every model of the book. Here nothing of ``dlnotes``
changes; the kernel of a dry run gets different functions, and its checkpoint keys do not matter
since its checkpoints are thrown away.

A loop a chapter writes by hand (chapter 01's numpy network, chapter 05's CycleGAN) is cut when
it walks through :func:`dlnotes.train.batch_slices`; one over a plain ``range`` is not, and a dry
run runs it whole.
"""

from __future__ import annotations

import bisect
import inspect
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_STEPS",
    "is_epoch_count",
    "install",
    "setup_source",
    "banner",
    "estimate",
    "format_estimate",
]

DEFAULT_STEPS = 3  # the first batch of a pass warms up; the others give the step time
CPU_PROBE_ROWS = 256  # rows of a dry run's first prediction per model on a CPU, and the size up
# to which a prediction is computed whole (see install)


def is_epoch_count(name: str) -> bool:
    """Whether a chapter parameter counts epochs (or, for full-batch training, steps)."""
    return name.endswith("EPOCHS") or name == "STEPS"


def install(
    steps: int, log: str | Path, checkpoints: str | Path, max_epochs: int | None = None
) -> None:
    """Shorten this process's training and prediction passes to ``steps`` batches, write one
    JSON line per pass to ``log``, and put checkpoints under ``checkpoints``; with
    ``max_epochs``, also cap every epoch count a chapter takes from ``from_profile`` at that.
    Called by the first cell of a dry run's notebook, before the chapter imports anything."""
    import functools

    from torch.utils.data import DataLoader

    from .. import params, state, train

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if max_epochs is not None and max_epochs < 1:
        raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
    handle = open(Path(log), "a", buffering=1)  # one line a pass; open for the kernel's life

    def record(kind: str, **fields: Any) -> None:
        handle.write(json.dumps({"kind": kind, **fields}) + "\n")

    # Epoch counts: kept unless capped. A chapter whose profile trains for hundreds of epochs
    # at seconds a step (05's CycleGAN at 256 px: 12 s a step on two cores) needs the cap to
    # finish in minutes; capped through the profile, so that every count a chapter derives
    # from them (a schedule, a snapshot plan, "at most EPOCHS") stays consistent.
    full_from_profile = params.from_profile

    @functools.wraps(full_from_profile)
    def from_profile(profiles, profile, **explicit):
        values = list(full_from_profile(profiles, profile, **explicit))
        for i, name in enumerate(explicit):
            value = values[i]
            if (
                max_epochs is not None
                and is_epoch_count(name)
                and isinstance(value, int)
                and not isinstance(value, bool)
                and value > max_epochs
            ):
                record("cap", name=name, real=value, dry=max_epochs)
                values[i] = max_epochs
        return tuple(values)

    def shortened(iterator, real: int | None, kind: str):
        # setup: until the first batch is made (a shuffle, say); times[i]: from handing out
        # batch i until batch i + 1 is made, that is the consumer's step and our next batch.
        began, mark = time.time(), time.perf_counter()
        setup, times = 0.0, []
        try:
            for i, item in enumerate(iterator):
                made = time.perf_counter()
                if i == 0:
                    setup = made - mark
                else:
                    times[-1] += made - mark
                yield item
                mark = time.perf_counter()
                times.append(mark - made)
                if i + 1 >= steps:
                    break
        finally:
            record(kind, start=began, end=time.time(), real=real, done=len(times),
                   setup=setup, times=times)  # fmt: skip

    # A shortened pass says it is short: code that plans by len() (snapshot steps, a schedule's
    # length, fit's step count) sees the batches it will get.
    batches_iter, batches_len = train.Batches.__iter__, train.Batches.__len__

    def batches(self):
        return shortened(batches_iter(self), batches_len(self), "train")

    loader_iter, loader_len = DataLoader.__iter__, DataLoader.__len__

    def loader(self):
        try:
            real = loader_len(self)
        except TypeError:  # an iterable dataset without a length
            real = None
        return shortened(loader_iter(self), real, "train")

    # A hand-written loop over ``train.batch_slices`` is cut the same way: its first `steps`
    # slices, timed as a pass, with its len() saying so.
    full_slices = train.batch_slices

    class CutSlices:
        def __init__(self, whole: list[slice]):
            self.whole = whole

        def __len__(self) -> int:
            return min(len(self.whole), steps)

        def __iter__(self):
            return shortened(iter(self.whole), len(self.whole), "train")

    @functools.wraps(full_slices)
    def batch_slices(n: int, batch_size: int, *, drop_last: bool = False):
        return CutSlices(full_slices(n, batch_size, drop_last=drop_last))

    full_predict = train.predict
    rates: dict[tuple, float] = {}  # seconds per row, from the first whole batch of each kind
    defaults = {
        k: p.default
        for k, p in inspect.signature(full_predict).parameters.items()
        if p.kind is p.KEYWORD_ONLY and k != "batch_size"
    }

    @functools.wraps(full_predict)
    def predict(model, X, *, batch_size: int = 4096, **kwargs):
        # The first call per model and input shape computes one batch at its real size (the
        # largest the real run computes); later ones (an evaluation every epoch) only `steps`
        # rows, and are predicted at the rate the first one measured.
        options = {**defaults, **kwargs}  # evaluate passes amp and flip; a chapter may not
        key = (id(model), batch_size, tuple(X.shape[1:]), repr(sorted(options.items())))
        # On a GPU the whole batch shows whether it fits in memory; a CPU's memory is not the
        # question, its time is (a batch of 4,096 through a full-width VGG: about a minute on
        # two cores), and CPU_PROBE_ROWS rows give the rate per row as well.
        # One small batch (images to show) is computed whole: cheap, and a chapter may read
        # every row's side effects (02's feature maps, from a forward hook).
        probe = batch_size if X.device.type != "cpu" else min(batch_size, CPU_PROBE_ROWS)
        if len(X) <= min(batch_size, CPU_PROBE_ROWS):
            rows = len(X)
        else:
            rows = min(len(X), steps if key in rates else probe)
        began, t = time.time(), time.perf_counter()
        out = full_predict(model, X[:rows], batch_size=batch_size, **kwargs)
        took = time.perf_counter() - t
        if key not in rates and rows:
            rates[key] = took / rows
        record("predict", start=began, end=time.time(), real=len(X), done=rows, seconds=took,
               whole=rates.get(key, 0.0) * len(X))  # fmt: skip
        if 0 < rows < len(X):  # placeholders of the right shape: the computed rows, repeated
            reps = -(-len(X) // rows)
            out = out.repeat(reps, *([1] * (out.dim() - 1)))[: len(X)]
        return out

    full_checkpoint_file = state.checkpoint_file

    @functools.wraps(full_checkpoint_file)
    def checkpoint_file(name, config, *, code=(), root=None):
        return full_checkpoint_file(name, config, code=code, root=root or checkpoints)

    train.Batches.__iter__ = batches
    train.Batches.__len__ = lambda self: min(batches_len(self), steps)
    DataLoader.__iter__ = loader
    DataLoader.__len__ = lambda self: min(loader_len(self), steps)
    train.predict = predict
    train.batch_slices = batch_slices
    params.from_profile = from_profile
    state.checkpoint_file = checkpoint_file


def setup_source(steps: int, log: Path, checkpoints: Path, max_epochs: int | None = None) -> str:
    """Return the code of the cell a dry run's notebook starts with."""
    return (
        "# dlnotes dry run: shortened passes, throw-away checkpoints (see dlnotes.runner.dry)\n"
        "from dlnotes.runner.dry import install as _dry_install\n"
        f"_dry_install({steps}, {str(log)!r}, {str(checkpoints)!r}, {max_epochs!r})\n"
        "del _dry_install"
    )


def banner(steps: int, profile: str | None, max_epochs: int | None = None) -> str:
    """Return the markdown that replaces the setup cell in a dry run's report."""
    capped = f", every epoch count capped at {max_epochs}" if max_epochs is not None else ""
    return (
        f"**Dry run** of the `{profile}` profile: every pass over the training data stopped "
        f"after {steps} batches{capped}, and every prediction computed one batch (or {steps} "
        "rows), repeated. "
        "Every number, table and figure on this page is a placeholder; only that the chapter "
        "runs at these shapes, and how long its parts take, is real."
    )


def _times(cell) -> tuple[float, float] | None:
    meta = cell.get("metadata", {}).get("papermill", {})
    try:
        start = datetime.fromisoformat(meta["start_time"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(meta["end_time"].replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return start.timestamp(), end.timestamp()


def _predicted(entry: dict) -> tuple[float, float]:
    """Return (seconds the shortened pass took, seconds the whole pass would take)."""
    if entry["kind"] == "predict":
        return entry["seconds"], entry["whole"]
    times, real = entry["times"], entry["real"]
    took = entry["setup"] + sum(times)
    if not times or real is None:
        return took, took
    rest = statistics.median(times[1:]) if len(times) > 1 else times[0]
    return took, entry["setup"] + times[0] + rest * max(real - 1, 0)


def estimate(notebook, log: Path) -> dict[str, Any]:
    """Return the predicted wall time of the real run, per section and in all, from an
    executed dry-run ``notebook`` and its pass ``log``."""
    entries = []
    if Path(log).exists():
        entries = [json.loads(line) for line in Path(log).read_text().splitlines() if line]
    capped = {e["name"]: [e["real"], e["dry"]] for e in entries if e["kind"] == "cap"}
    entries = [e for e in entries if e["kind"] != "cap"]
    # Each pass belongs to the cell that was running when it began: the last one started.
    cells = []
    section = "(before the first section)"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heads = [
                line[3:].strip() for line in cell.source.splitlines() if line.startswith("## ")
            ]
            section = heads[0] if heads else section
        elif (span := _times(cell)) is not None:
            cells.append((span[0], max(span[1] - span[0], 0.0), section))
    cells.sort(key=lambda c: c[0])
    starts = [c[0] for c in cells]
    took = [0.0] * len(cells)
    whole = [0.0] * len(cells)
    passes = [0] * len(cells)
    for entry in entries if cells else ():
        i = max(bisect.bisect_right(starts, entry["start"]) - 1, 0)
        a, b = _predicted(entry)
        took[i], whole[i], passes[i] = took[i] + a, whole[i] + b, passes[i] + 1
    sections: dict[str, dict[str, Any]] = {}
    for i, (_, wall, name) in enumerate(cells):
        s = sections.setdefault(name, {"section": name, "dry_s": 0.0, "estimate_s": 0.0,
                                       "training_s": 0.0, "passes": 0})  # fmt: skip
        s["dry_s"] += wall
        s["training_s"] += whole[i]
        s["estimate_s"] += max(wall - took[i], 0.0) + whole[i]
        s["passes"] += passes[i]
    sections = list(sections.values())
    sections = [s for s in sections if s["dry_s"] or s["passes"]]
    for s in sections:
        for key in ("dry_s", "estimate_s", "training_s"):
            s[key] = round(s[key], 1)
    total = round(sum(s["estimate_s"] for s in sections), 1)
    return {"sections": sections, "estimate_s": total,
            "dry_s": round(sum(s["dry_s"] for s in sections), 1),
            "passes": len(entries), "capped": capped}  # fmt: skip


def _clock(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_estimate(chapter: str, profile: str | None, device: str, result: dict) -> str:
    """Return the estimate as a table for the terminal."""
    width = max([len(s["section"]) for s in result["sections"]] + [7])
    width = min(width, 60)
    lines = [f"{chapter} at {profile} on {device}: about {_clock(result['estimate_s'])} "
             f"(dry run {_clock(result['dry_s'])}, {result['passes']} shortened passes)",
             f"  {'section':<{width}}  {'estimate':>9}  {'training':>9}"]  # fmt: skip
    for s in result["sections"]:
        name = s["section"] if len(s["section"]) <= width else s["section"][: width - 1] + "…"
        lines.append(
            f"  {name:<{width}}  {_clock(s['estimate_s']):>9}  {_clock(s['training_s']):>9}"
        )
    if result.get("capped"):
        counts = ", ".join(f"{k} {real} → {dry}" for k, (real, dry) in result["capped"].items())
        lines.append(f"  epoch counts capped ({counts}): the estimate is for the capped counts, "
                     "not the profile's")  # fmt: skip
    return "\n".join(lines)
