"""Image datasets as whole tensors: what in-memory training wants.

Small sets (MNIST, Fashion-MNIST, CIFAR-10) are read with torchvision's own dataset classes.
Image folders (Tiny-ImageNet, horse2zebra, the CIFAR-10 JPEG copy) are decoded once into a cached
uint8 tensor file keyed by image size, so later runs start in seconds.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..files import atomic_path
from .registry import get
from .store import DataError, cache_dir, dataset_root, fetch, load_derived

__all__ = ["ImageData", "load_images", "normalize", "NORMALIZATIONS"]

NORMALIZATIONS = ("standard", "unit", "symmetric", "none")


@dataclass
class ImageData:
    """Splits of (X, y) tensors; X is (N, C, H, W), float unless normalization is 'none'."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    classes: list[str]
    dataset: str  # the registry variant that was read (say it in the report)
    normalization: str  # how uint8 pixels became floats, in words
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __getitem__(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.splits[split]


def normalize(x: torch.Tensor, how: str, mean=None, std=None) -> tuple[torch.Tensor, str]:
    """Return uint8 images (N, C, H, W) as floats, and the normalisation in words.

    'standard': (x/255 - mean) / std per channel; 'unit': x/255 in [0, 1]; 'symmetric': [-1, 1];
    'none': the uint8 tensor unchanged.
    """
    if how == "none":
        return x, "uint8 pixels 0-255, not normalised"
    x = x.float().div_(255)
    if how == "unit":
        return x, "pixels scaled to [0, 1]"
    if how == "symmetric":
        return x.mul_(2).sub_(1), "pixels scaled to [-1, 1]"
    if how == "standard":
        mean_t = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
        text = f"(x/255 - mean) / std per channel, training-set mean {mean} and std {std}"
        return x.sub_(mean_t).div_(std_t), text
    raise ValueError(f"unknown normalization {how!r}; choose one of {', '.join(NORMALIZATIONS)}")


def _channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    x = x.float().div(255)
    return ([round(v, 4) for v in x.mean(dim=(0, 2, 3)).tolist()],
            [round(v, 4) for v in x.std(dim=(0, 2, 3)).tolist()])  # fmt: skip


def _torchvision_mnist(name: str, **fetch_kwargs) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    folder = fetch(name, **fetch_kwargs)  # verifies the files (cheaply, once they are stamped)

    def build():
        from torchvision import datasets

        cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
        tv_root = folder / "torchvision"
        raw = tv_root / cls.__name__ / "raw"
        # torchvision reads the uncompressed IDX files from <root>/<Class>/raw; they are made
        # afresh from the verified archives each time, so a damaged old copy is never read.
        shutil.rmtree(raw, ignore_errors=True)
        with atomic_path(raw) as tmp:
            tmp.mkdir()
            for entry in get(name).files:
                with (
                    gzip.open(folder / entry.name) as src,
                    open(tmp / entry.name[:-3], "wb") as dst,
                ):
                    shutil.copyfileobj(src, dst)
        splits = {}
        for split, train in (("train", True), ("test", False)):
            ds = cls(root=str(tv_root), train=train, download=False)
            splits[split] = (ds.data.unsqueeze(1), ds.targets)  # (N, 1, 28, 28) uint8
        splits["classes"] = list(cls.classes)
        return splits

    # Loading the cached tensors skips importing torchvision.datasets, about a second per process.
    return load_derived(folder / "tensors.pt", name, build)


def _torchvision_cifar10(**fetch_kwargs):
    from torchvision import datasets

    root = dataset_root("cifar10", **fetch_kwargs).parent
    splits = {}
    for split, train in (("train", True), ("test", False)):
        ds = datasets.CIFAR10(root=str(root), train=train, download=False)
        splits[split] = (torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(),
                         torch.tensor(ds.targets))  # fmt: skip
        splits["classes"] = list(ds.classes)
    return splits


def _folder_listing(name: str, root: Path) -> tuple[dict[str, list[tuple[Path, int]]], list[str]]:
    """Return {split: [(image path, label)]} and the class names for an image-folder dataset."""
    if name.startswith("tiny-imagenet"):
        wnids = [
            w for w in (root / "wnids.txt").read_text().split() if (root / "train" / w).is_dir()
        ]
        index = {w: i for i, w in enumerate(wnids)}
        words = dict(
            line.split("\t", 1)
            for line in (root / "words.txt").read_text().splitlines()
            if "\t" in line
        )
        train = [
            (p, index[w])
            for w in wnids
            for p in sorted((root / "train" / w / "images").glob("*.JPEG"))
        ]
        val = []
        for line in (root / "val" / "val_annotations.txt").read_text().splitlines():
            file, wnid = line.split("\t")[:2]
            if wnid in index:
                val.append((root / "val" / "images" / file, index[wnid]))
        return {"train": train, "val": val}, [words.get(w, w).split(",")[0] for w in wnids]
    if name.startswith("horse2zebra"):
        splits = {
            s: [(p, 0 if s.endswith("A") else 1) for p in sorted((root / s).glob("*.jpg"))]
            for s in ("trainA", "trainB", "testA", "testB")
        }
        return splits, ["horse", "zebra"]
    if name == "cifar10-jpg":
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        return {
            s: [(p, i) for i, c in enumerate(classes) for p in sorted((root / s / c).glob("*.jpg"))]
            for s in ("train", "test")
        }, classes
    raise DataError(f"{name} is not an image-folder dataset")


def _decode(files: list[tuple[Path, int]], size: int | None, desc: str, progress: bool):
    # Pillow, not torchvision.io: torchvision 0.29 deprecates its image decoders.
    import numpy as np
    from PIL import Image
    from tqdm.auto import tqdm

    images, labels = [], []
    for path, label in tqdm(files, desc=desc, disable=not progress, leave=False, unit="img"):
        with Image.open(path) as img:
            img = img.convert("RGB")  # the greyscale images become three equal channels
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
            images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))  # (3, H, W)
        labels.append(label)
    if not images:
        raise DataError(f"{desc}: no images found")
    return torch.stack(images), torch.tensor(labels)


def _image_folder(name: str, size: int | None, progress: bool, **fetch_kwargs):
    """Decode an image-folder dataset once; later calls load the cached uint8 tensors."""
    cached = cache_dir(fetch_kwargs.get("cache")) / name / f"tensors-{size or 'native'}.pt"

    def build():
        root = dataset_root(name, progress=progress, **fetch_kwargs)
        listing, classes = _folder_listing(name, root)
        data = {s: _decode(files, size, f"{name} {s}", progress) for s, files in listing.items()}
        data["classes"] = classes
        return data

    return load_derived(cached, name, build)


def load_images(
    name: str,
    *,
    size: int | None = None,
    val: float | int = 0,
    seed: int = 0,
    normalization: str = "standard",
    device: str | torch.device = "cpu",
    cache: str | Path | None = None,
    mirror: str | Path | None = None,
    progress: bool = True,
) -> ImageData:
    """Return an image dataset as tensors on ``device``.

    ``val`` carves a validation split out of 'train' (a share if below 1, else a count) with a
    generator seeded by ``seed``. ``normalization`` is one of NORMALIZATIONS; 'standard' uses
    per-channel statistics of the (remaining) training split. ``size`` resizes image-folder
    datasets (decoded once per size and cached).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; choose one of {NORMALIZATIONS}")
    get(name)  # unknown names fail here, before any I/O
    kwargs = {"cache": cache, "mirror": mirror}
    if name in ("mnist", "fashion-mnist"):
        raw = _torchvision_mnist(name, progress=progress, **kwargs)
    elif name == "cifar10":
        raw = _torchvision_cifar10(progress=progress, **kwargs)
    else:
        raw = _image_folder(name, size, progress, **kwargs)
    classes = raw.pop("classes")
    splits = dict(raw)
    if val:
        X, y = splits["train"]
        n_val = int(round(len(X) * val)) if val < 1 else int(val)
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
        splits["train"] = (X[order[n_val:]], y[order[n_val:]])
        splits["val"] = (X[order[:n_val]], y[order[:n_val]])
    train_key = "train" if "train" in splits else next(iter(splits))
    mean, std = _channel_stats(splits[train_key][0]) if normalization == "standard" else ([], [])
    out, text = {}, ""
    for split, (X, y) in splits.items():
        X, text = normalize(X.to(device), normalization, mean, std)
        out[split] = (X, y.to(device))
    return ImageData(out, classes, name, text, mean, std)
