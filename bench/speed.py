"""Speed benchmark: the dlnotes engine against the lab reports' loop, and time-to-accuracy runs.

    DLNOTES_MIRROR=../shared/data .venv/bin/python bench/speed.py

For each task both loops train the same model (same initial weights), on the same data, for the
same epochs, with the same optimiser, learning rate and batch size; the engine adds what it does
for every chapter (batches drawn on the device, one host sync per epoch, batched evaluation) and
the per-task layout and precision choices measured in bench/README.md. Every (task, loop) runs in
a fresh child process, one after another, so peak memory is the child's own. Results go to
``book/bench/<device>.json`` (read by the book's benchmark page) and a plot beside it; ``--only`` picks tasks.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from dlnotes.env import cpu_features

HERE = Path(__file__).resolve().parent


@dataclass
class Task:
    """One benchmark task: a lab report's kind of model on its dataset."""

    name: str
    label: str
    data: str
    epochs: int
    batch_size: int
    lr: float
    n_train: int | None = None  # a seeded subset, the same for both loops; None: all
    n_test: int | None = None
    normalization: str = "standard"
    engine: dict = field(default_factory=dict)  # the engine's channels_last / amp choices
    tuned: dict = field(default_factory=dict)  # a larger batch (and LR) for a third run


TASKS = {
    t.name: t
    for t in [
        Task("mlp-fashion", "MLP 784-500-10, Fashion-MNIST", "fashion-mnist", epochs=2,
             batch_size=100, lr=1e-3, engine={"amp": True}),
        Task("lenet-mnist", "LeNet-5, MNIST", "mnist", epochs=2, batch_size=64, lr=1e-3,
             engine={"channels_last": True},
             tuned={"batch_size": 256, "lr": 4e-3, "amp": True}),
        Task("vgg-cifar10", "small VGG (6 conv), CIFAR-10 JPEG", "cifar10-jpg", epochs=2,
             batch_size=64, lr=1e-4, n_train=10_000, n_test=2_000, normalization="unit",
             engine={"channels_last": True, "amp": True}),
        Task("bilstm-imdb", "BiLSTM (2 layers), IMDB, length 128", "imdb", epochs=2,
             batch_size=64, lr=1e-3, n_train=10_000, n_test=2_000, engine={"amp": True}),
    ]
}  # fmt: skip


def _subset(n_total: int, n: int | None, seed: int) -> torch.Tensor:
    order = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return order[: n or n_total]


def _image_sets(task: Task, loop: str, device: torch.device, seed: int):
    """Return (train, test) for one loop: per-sample torchvision datasets, or device tensors."""
    from dlnotes.data import fetch, load_images

    data = load_images(task.data, normalization=task.normalization, device=device, progress=False)
    idx = {s: _subset(len(data[s][1]), n, seed) for s, n in (("train", task.n_train),
                                                             ("test", task.n_test))}  # fmt: skip
    if loop != "lab":
        return tuple((data[s][0][idx[s].to(device)], data[s][1][idx[s].to(device)])
                     for s in ("train", "test"))  # fmt: skip
    mean, std = data.mean, data.std  # empty unless normalization is 'standard'
    del data
    from torch.utils.data import Subset
    from torchvision import datasets, transforms

    steps = [transforms.ToTensor()]  # PIL image -> float in [0, 1], per sample
    if task.normalization == "standard":
        steps.append(transforms.Normalize(mean, std))
    tf = transforms.Compose(steps)
    if task.data in ("mnist", "fashion-mnist"):
        # load_images has unpacked the IDX files where torchvision's own class reads them.
        cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[task.data]
        root = str(fetch(task.data, progress=False) / "torchvision")
        sets = {s: cls(root, train=s == "train", transform=tf) for s in ("train", "test")}
    else:  # the JPEG folders, decoded per sample as an ImageFolder pipeline does
        from dlnotes.data import dataset_root

        root = dataset_root(task.data, progress=False)
        sets = {s: datasets.ImageFolder(str(root / s), transform=tf) for s in ("train", "test")}
    return tuple(Subset(sets[s], idx[s].tolist()) for s in ("train", "test"))


def _text_sets(task: Task, loop: str, device: torch.device, seed: int):
    """Return (train, test, vocabulary size) for the IMDB task, split 80/20 like the report."""
    from labstyle import Reviews, left_pad

    from dlnotes.data import Vocab, load_imdb

    imdb = load_imdb(progress=False)
    pool = _subset(len(imdb.texts["train"]), None, seed)
    n_fit = int(len(pool) * 0.8)  # the report kept 20% of the training reviews for validation
    train_idx = pool[:n_fit][: task.n_train].tolist()
    test_idx = _subset(len(imdb.texts["test"]), task.n_test, seed).tolist()
    texts = {"train": [imdb.texts["train"][i] for i in train_idx],
             "test": [imdb.texts["test"][i] for i in test_idx]}  # fmt: skip
    labels = {"train": imdb.labels["train"][train_idx], "test": imdb.labels["test"][test_idx]}
    vocab = Vocab.build([imdb.texts["train"][i] for i in pool[:n_fit].tolist()], size=32_000)
    if loop == "lab":
        return (*(Reviews(texts[s], labels[s], vocab, 128) for s in ("train", "test")), len(vocab))
    sets = []
    for s in ("train", "test"):
        ids = left_pad(*vocab.encode(texts[s], 128))
        sets.append((ids.to(device), labels[s].float().to(device)))
    return (*sets, len(vocab))


def measure(task: Task, loop: str, device: torch.device, seed: int = 0) -> dict:
    """Run one loop on one task in this process; return its curves and resource use."""
    import labstyle
    import models

    from dlnotes.train import Batches, accuracy, binary_accuracy, fit

    began = time.perf_counter()
    if task.data == "imdb":
        train, test, vocab_size = _text_sets(task, loop, device, seed)
    else:
        train, test = _image_sets(task, loop, device, seed)
    prep_seconds = time.perf_counter() - began
    torch.manual_seed(seed)  # same initial weights for both loops
    model = {
        "mlp-fashion": models.mlp,
        "lenet-mnist": models.lenet,
        "vgg-cifar10": models.small_vgg,
        "bilstm-imdb": lambda: models.BiLSTM(vocab_size),
    }[task.name]().to(device)
    binary = task.data == "imdb"
    loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
    cfg = {"batch_size": task.batch_size, "lr": task.lr, "channels_last": False, "amp": None}
    if loop.startswith("engine"):
        cfg |= task.engine | (task.tuned if loop == "engine-tuned" else {})
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    began = time.perf_counter()
    if loop == "lab":
        curves = labstyle.fit(model, opt, loss_fn, train, test, epochs=task.epochs,
                              batch_size=cfg["batch_size"], device=device, seed=seed,
                              binary=binary)  # fmt: skip
    else:
        (X, y), (X_test, y_test) = train, test
        if cfg["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
            X = X.contiguous(memory_format=torch.channels_last)
            X_test = X_test.contiguous(memory_format=torch.channels_last)
        batches = Batches(X, y, cfg["batch_size"], generator=torch.Generator().manual_seed(seed))
        metric = binary_accuracy if binary else accuracy
        history = fit(model, opt, loss_fn, batches, epochs=task.epochs, metric=metric,
                      val=(X_test, y_test), amp=cfg["amp"], progress=False)  # fmt: skip
        wall = time.perf_counter() - began
        curves = {"seconds": history["seconds"], "train_loss": history["train_loss"],
                  "train_acc": history["train_metric"], "test_acc": history["val_metric"],
                  "eval_seconds": [(wall - history.last("seconds")) / task.epochs] * task.epochs}  # fmt: skip
    n_train = len(train) if loop == "lab" else len(train[1])
    peak_mib = peak_rss_mib()
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    return {
        "task": task.name,
        "loop": loop,
        "config": cfg,
        "n_train": n_train,
        "prep_seconds": prep_seconds,
        "samples_per_second": n_train * task.epochs / curves["seconds"][-1],
        "peak_memory_mib": peak_mib,
        "peak_memory_kind": "cuda max allocated" if device.type == "cuda" else "process peak RSS",
        **curves,
    }


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB.

    VmHWM, not getrusage: Linux keeps ru_maxrss across fork and exec, so a child would report
    its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere


def time_to(curves: dict, target: float) -> float | None:
    """Return wall seconds (training plus evaluation) until test accuracy first reached target."""
    from report import wall_times

    for acc, clock in zip(curves["test_acc"], wall_times(curves), strict=True):
        if acc >= target - 1e-12:
            return clock
    return None


def _child(args: list[str], script: str | Path = __file__) -> dict:
    """Run ``script --child *args`` in a fresh process; return the JSON of its last line."""
    out = subprocess.run([sys.executable, str(Path(script)), "--child", *args],
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"bench child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def header(device: torch.device) -> dict:
    """Return the fields every result file starts with: the machine, its CPU, torch, the date."""
    return {"machine": machine(device), "cpu": cpu_features(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def machine(device: torch.device) -> str:
    """Return a short description of the hardware, e.g. 'cpu: AMD EPYC (2 threads)'."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    name = cpu_features()["model"] or platform.processor() or platform.machine()
    return f"cpu: {name} ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[*TASKS, "speedrun"], help="tasks to run")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speedrun-seeds", type=int, default=3, help="repeats of the speedrun")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/<name>.json)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, loop, device = args.child
        device = torch.device(device)
        if device.type == "cuda":  # the caller's switches, never set on import
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")  # TF32 where autocast leaves fp32
        if name == "speedrun":
            import speedrun

            print(json.dumps(speedrun.mnist(device, seed=int(loop))))
        else:
            print(json.dumps(measure(TASKS[name], loop, device, args.seed)))
        return

    from dlnotes.data import load_images, load_imdb
    from dlnotes.env import pick_device
    from dlnotes.files import write_atomic

    device = pick_device(args.device)
    only = args.only or [*TASKS, "speedrun"]
    needed = {TASKS[n].data for n in only if n in TASKS} | (
        {"mnist"} if "speedrun" in only else set()
    )
    for data in sorted(needed):  # fetch and cache the datasets first, so no child pays for it
        load_imdb(progress=False) if data == "imdb" else load_images(data, progress=False)
    result = {**header(device), "device": device.type, "tasks": {}, "speedrun": []}
    for name in [n for n in only if n in TASKS]:
        runs = {}
        for loop in ("lab", "engine", "engine-tuned")[: 3 if TASKS[name].tuned else 2]:
            print(f"{name}: {loop} loop ...", flush=True)
            runs[loop] = _child([name, loop, device.type])
        target = min(r["test_acc"][-1] for r in runs.values())
        for r in runs.values():
            r["target_acc"], r["time_to_target"] = target, time_to(r, target)
        result["tasks"][name] = {"task": asdict(TASKS[name]), "runs": runs}
    if "speedrun" in only:
        for seed in range(args.speedrun_seeds):
            print(f"MNIST speedrun, seed {seed} ...", flush=True)
            result["speedrun"].append(_child(["speedrun", str(seed), device.type]))
    out = args.out or HERE.parent / "book" / "bench" / f"{device.type}.json"
    write_atomic(out, json.dumps(result, indent=1))
    import report

    print(report.table(result))
    report.plot(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
