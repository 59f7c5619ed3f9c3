"""The engine against the ceiling: `fit`'s training throughput beside a bare step loop.

    .venv/bin/python bench/overhead.py [--rounds 7] [--out FILE]

For each benchmark model both loops train the same network (same initial weights), on the same
device tensors, with the same batch size, optimiser (Adam), layout and precision. The **bare
loop** is the least any training loop must do: a permutation per epoch, index the batch, forward,
loss, `zero_grad`, backward, `step`; one host sync at the end. The **engine** is
`dlnotes.train.fit` as the chapters call it: `Batches` drawing on the device, the per-step loss
and accuracy kept on the device, one host sync per epoch (no validation, no checkpoint, no
progress bar: those happen once per epoch and are not part of a step's cost). Its ratio against
the bare loop is the share of the reachable throughput the engine gets.

The data are random tensors of each task's shapes (a step's cost does not depend on the values).
The two loops alternate, one epoch each per round, the order swapped every round, after one
warm-up epoch each; the result is the median of the rounds' throughputs and of their pairwise
ratios. Precision and layout are decided per machine as the chapters do (`bf16_is_fast`,
`conv_memory_format`) and recorded with the CPU's model and flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent

# name: (builder, input shape and dtype, batch, samples per epoch, binary labels)
VOCAB = 32_000
TASKS = {
    "MLP 784-500-10": ("mlp", (1, 28, 28), 100, 12_000, False),
    "LeNet-5": ("lenet", (1, 28, 28), 64, 6_400, False),
    "speedrun CNN": ("speedrun_cnn", (1, 28, 28), 128, 6_400, False),
    "small VGG": ("small_vgg", (3, 32, 32), 64, 1_024, False),
    "BiLSTM (length 128)": ("bilstm", (128,), 64, 1_024, True),
}


def _build(kind: str) -> nn.Module:
    import models

    if kind == "bilstm":
        return models.BiLSTM(VOCAB)
    return getattr(models, kind)()


def _data(shape, n: int, binary: bool, device):
    g = torch.Generator().manual_seed(0)
    if len(shape) == 1:  # token ids
        X = torch.randint(1, VOCAB, (n, *shape), generator=g)
    else:
        X = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, 2 if binary else 10, (n,), generator=g)
    return X.to(device), (y.float() if binary else y).to(device)


def bare_epoch(model, opt, loss_fn, X, y, batch, amp, g) -> None:
    """The ceiling: the least a loop over device tensors does per step."""
    model.train()
    order = torch.randperm(len(X), device=X.device, generator=g)
    for i in range(0, len(X), batch):
        idx = order[i : i + batch]
        with torch.autocast(X.device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    float(loss.detach())  # one host sync


def measure(name: str, device: torch.device, rounds: int) -> dict:
    from dlnotes.env import bf16_is_fast, seed_everything
    from dlnotes.layout import conv_memory_format
    from dlnotes.train import Batches, accuracy, binary_accuracy, fit

    kind, shape, batch, n, binary = TASKS[name]
    amp = bf16_is_fast(device)
    seed_everything(0)
    model = _build(kind).to(device)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    layout = conv_memory_format(model, device) if has_conv else torch.contiguous_format
    model = model.to(memory_format=layout)
    X, y = _data(shape, n, binary, device)
    if has_conv:
        X = X.contiguous(memory_format=layout)
    loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
    metric = binary_accuracy if binary else accuracy
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)  # small: the weights stay sane
    g = torch.Generator(device=device).manual_seed(0)
    batches = Batches(X, y, batch, generator=torch.Generator().manual_seed(0))

    def bare():
        bare_epoch(model, opt, loss_fn, X, y, batch, amp, g)

    def engine():
        fit(model, opt, loss_fn, batches, epochs=1, metric=metric, amp=amp, progress=False)

    def timed(run):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - began)

    timed(bare), timed(engine)  # warm-up: allocator, oneDNN primitives, autocast caches
    speeds = {"bare": [], "engine": []}
    for r in range(rounds):
        order = ("bare", "engine") if r % 2 == 0 else ("engine", "bare")
        for loop in order:
            speeds[loop].append(timed(bare if loop == "bare" else engine))
    ratios = [e / b for e, b in zip(speeds["engine"], speeds["bare"], strict=True)]
    return {
        "model": name,
        "batch": batch,
        "samples_per_epoch": n,
        "amp": amp,
        "layout": "channels_last" if layout == torch.channels_last else "contiguous",
        "bare_samples_per_s": statistics.median(speeds["bare"]),
        "engine_samples_per_s": statistics.median(speeds["engine"]),
        "ratio_median": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "rounds": rounds,
        "speeds": speeds,
    }


def table(result: dict) -> str:
    """Return the result as the Markdown table the book's appendix shows (one formatting)."""
    from dlnotes.runner.sphinxext import bench_rows

    ((headers, rows),) = bench_rows(result)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--rounds", type=int, default=7, help="paired epochs per model")
    parser.add_argument("--only", nargs="*", choices=list(TASKS), help="models to run")
    parser.add_argument("--scale", type=float, default=1.0, help="samples per epoch × this")
    parser.add_argument(
        "--out", type=Path, help="result file (default book/bench/<device>-overhead.json)"
    )
    args = parser.parse_args(argv)
    from speed import header

    from dlnotes.env import pick_device
    from dlnotes.files import write_atomic

    device = pick_device(args.device)
    if args.scale != 1.0:
        for k, (kind, shape, batch, n, binary) in TASKS.items():
            TASKS[k] = (kind, shape, batch, max(batch, int(n * args.scale)), binary)
    result = {"kind": "overhead", **header(device), "threads": torch.get_num_threads(), "runs": []}
    for name in args.only or TASKS:
        print(f"{name} ...", flush=True)
        result["runs"].append(measure(name, device, args.rounds))
    out = args.out or HERE.parent / "book" / "bench" / f"{device.type}-overhead.json"
    write_atomic(out, json.dumps(result, indent=1))
    print(table(result))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
