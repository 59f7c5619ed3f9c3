"""The dataset registry: one declarative entry per dataset variant, no I/O.

Checksums: sha256 where one was seen (the mirror's SHA256SUMS, or a published value), and the
md5 that torchvision (or the dataset's usual loaders) publish. A file with neither cannot be
verified, and fetching it needs ``allow_unverified=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DataFile", "Dataset", "REGISTRY", "get", "names"]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset as distributed."""

    name: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None  # bytes, where known
    extract: bool = False  # an archive to unpack after verification


@dataclass(frozen=True)
class Dataset:
    """A dataset variant: its files, where to find them, and how to cite it."""

    name: str
    title: str
    files: tuple[DataFile, ...]
    urls: tuple[str, ...] = ()  # official base URLs, tried in order (file name appended)
    mirror_path: str | None = None  # folder inside a mirror; None: the mirror does not hold it
    citation: str = ""
    licence: str = ""
    note: str = ""  # how this variant differs from the official distribution, if it does
    variant_of: str | None = None
    folder: str | None = None  # top folder an archive unpacks to
    sizes: dict[str, int] = field(default_factory=dict)  # examples per split


_MNIST_CITE = (
    "Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits, 1998."
)
_FMNIST_CITE = (
    "H. Xiao, K. Rasul, R. Vollgraf, Fashion-MNIST: a Novel Image Dataset for Benchmarking "
    "Machine Learning Algorithms, arXiv:1708.07747, 2017."
)
_CIFAR_CITE = "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009."
_IMDB_CITE = (
    "A. L. Maas, R. E. Daly, P. T. Pham, D. Huang, A. Y. Ng, C. Potts, Learning Word Vectors for "
    "Sentiment Analysis, ACL 2011."
)
_TINY_CITE = (
    "Stanford CS231n, Tiny ImageNet Visual Recognition Challenge, 2015 (images from ImageNet)."
)
_CYCLE_CITE = (
    "J.-Y. Zhu, T. Park, P. Isola, A. A. Efros, Unpaired Image-to-Image Translation using "
    "Cycle-Consistent Adversarial Networks, ICCV 2017 (images from ImageNet)."
)
_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip

REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "mnist",
            "MNIST handwritten digits (28×28 grey, 10 classes)",
            tuple(
                DataFile(n, s, m)
                for n, s, m in zip(
                    _IDX,
                    (
                        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    ),
                    (
                        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                        "d53e105ee54ea40749a09fcbcd1e9432",
                        "9fb629c4189551a2d022fa330f9573f3",
                        "ec29112dd5afa0611ce80d1b7f02629c",
                    ),
                    strict=True,
                )
            ),  # fmt: skip
            urls=(
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ),
            mirror_path="mnist",
            citation=_MNIST_CITE,
            licence="commonly cited as CC BY-SA 3.0",
            sizes={"train": 60000, "test": 10000},
        ),
        Dataset(
            "fashion-mnist",
            "Fashion-MNIST clothing images (28×28 grey, 10 classes)",
            tuple(
                DataFile(n, s, m)
                for n, s, m in zip(
                    _IDX,
                    (
                        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                    ),
                    (
                        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                        "25c81989df183df01b3e8a0aad5dffbe",
                        "bef4ecab320f06d8554ea6380940ec79",
                        "bb300cfdad3c16e7a12a480ee83cd310",
                    ),
                    strict=True,
                )
            ),  # fmt: skip
            urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            mirror_path="fashion-mnist",
            citation=_FMNIST_CITE,
            licence="MIT",
            sizes={"train": 60000, "test": 10000},
        ),
        Dataset(
            "cifar10",
            "CIFAR-10 (32×32 colour, 10 classes), official python batches",
            (
                DataFile(
                    "cifar-10-python.tar.gz",
                    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                    "c58f30108f718f92721af3b95e74349a",
                    170498071,
                    extract=True,
                ),
            ),  # fmt: skip
            urls=("https://www.cs.toronto.edu/~kriz/",),
            citation=_CIFAR_CITE,
            licence="no licence stated; free for research",
            folder="cifar-10-batches-py",
            sizes={"train": 50000, "test": 10000},
        ),
        Dataset(
            "cifar10-jpg",
            "CIFAR-10 re-encoded as JPEG (the mirror's copy)",
            (
                DataFile(
                    "cifar10_jpg.tar.gz",
                    "f75eb9e5b34bd2ab0a3a1dee2ef083fdda1cbd4801c5c8605dbed700edb288b4",
                    extract=True,
                ),
            ),  # fmt: skip
            mirror_path="cifar10-jpg",
            citation=_CIFAR_CITE,
            licence="no licence stated; free for research",
            note="JPEG quality about 75 with 4:2:0 chroma: lossy, so accuracies run a little "
            "below those on the official lossless batches",
            variant_of="cifar10",
            sizes={"train": 50000, "test": 10000},
        ),
        Dataset(
            "imdb",
            "IMDB Large Movie Review Dataset, labelled reviews only",
            (
                DataFile(
                    "aclImdb_labeled.tar.gz",
                    "e80d7f6ce56afa13cd15d4d8f0fea3a074162f4c1ef9b3f4639aeefd41de0e6c",
                    extract=True,
                ),
            ),  # fmt: skip
            mirror_path="imdb",
            citation=_IMDB_CITE,
            licence="free for research (see aclImdb/README)",
            note="the 50,000 labelled reviews byte for byte; leaves out train/unsup and *.feat",
            variant_of="imdb-official",
            folder="aclImdb",
            sizes={"train": 25000, "test": 25000},
        ),
        Dataset(
            "imdb-official",
            "IMDB Large Movie Review Dataset v1.0, official archive",
            (DataFile("aclImdb_v1.tar.gz", md5="7c2ac02c03563afcf9b574c7e56c153a", extract=True),),
            urls=("https://ai.stanford.edu/~amaas/data/sentiment/",),
            citation=_IMDB_CITE,
            licence="free for research (see aclImdb/README)",
            folder="aclImdb",
            sizes={"train": 25000, "test": 25000, "unsup": 50000},
        ),
        Dataset(
            "tiny-imagenet-200",
            "Tiny ImageNet (64×64 colour, 200 classes), official archive",
            (
                DataFile(
                    "tiny-imagenet-200.zip",
                    md5="90528d7ca1a48142e341f4ef8d21d0de",
                    size=248100043,
                    extract=True,
                ),
            ),  # fmt: skip
            urls=("http://cs231n.stanford.edu/",),
            citation=_TINY_CITE,
            licence="ImageNet terms: non-commercial research and education",
            folder="tiny-imagenet-200",
            sizes={"train": 100000, "val": 10000},
        ),
        Dataset(
            "tiny-imagenet-100-subset",
            "Tiny ImageNet subset: first 100 classes, 100 train and 50 val images each",
            (
                DataFile(
                    "tiny-imagenet-200-subset100.tar.gz",
                    "90f037525d66eeb2d5e3a2c590bb8327002312167047c6953e2893391a9f5605",
                    extract=True,
                ),
            ),  # fmt: skip
            mirror_path="tiny-imagenet",
            citation=_TINY_CITE,
            licence="ImageNet terms: non-commercial research and education",
            note="the first 100 classes of wnids.txt, 100 of 500 training images per class, all 50 "
            "validation images; files byte-identical to the official ones",
            variant_of="tiny-imagenet-200",
            folder="tiny-imagenet-200",
            sizes={"train": 10000, "val": 5000},
        ),
        Dataset(
            "horse2zebra",
            "horse2zebra (256×256 JPEG), official CycleGAN archive",
            (DataFile("horse2zebra.zip", extract=True),),
            urls=("https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",),
            citation=_CYCLE_CITE,
            licence="ImageNet terms: non-commercial research and education",
            note="no checksum is published for this archive",
            folder="horse2zebra",
            sizes={"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140},
        ),
        Dataset(
            "horse2zebra-subset500",
            "horse2zebra subset: first 500 horses and 500 zebras for training, full test sets",
            (
                DataFile(
                    "horse2zebra-subset500.tar.gz",
                    "c51c3093fc7bb4f4235e57a4b391f1bff9e0ad530c61fad09f41b0163b107919",
                    extract=True,
                ),
            ),  # fmt: skip
            mirror_path="horse2zebra",
            citation=_CYCLE_CITE,
            licence="ImageNet terms: non-commercial research and education",
            note="the first 500 of trainA (of 1,067) and trainB (of 1,334) by file name, all of "
            "testA and testB; 7 zebra images are greyscale",
            variant_of="horse2zebra",
            folder="horse2zebra",
            sizes={"trainA": 500, "trainB": 500, "testA": 120, "testB": 140},
        ),
    ]
}


def names() -> list[str]:
    """Return the registered dataset names."""
    return list(REGISTRY)


def get(name: str | Dataset) -> Dataset:
    """Return the registry entry for ``name`` (a Dataset passes through); unknown names raise."""
    from .store import DataError

    if isinstance(name, Dataset):
        return name
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(REGISTRY)}")
    return REGISTRY[name]
