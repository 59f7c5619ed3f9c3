"""The data layer on tiny files written in each real format; no test here needs the mirror,
except the one marked `mirror`, which checks the whole mirror against the registry."""

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlnotes.data import (
    REGISTRY,
    DataError,
    DataFile,
    Vocab,
    fetch,
    load_images,
    load_imdb,
    standin_digits,
    standin_images,
    standin_pets,
    standin_reviews,
    tokenize,
    verify_cache,
)
from dlnotes.data.store import file_digest


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _idx(array: np.ndarray) -> bytes:
    """IDX format as in MNIST: magic (0, 0, dtype 0x08, ndim), big-endian dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _jpeg(color, size=(8, 8), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A cache and a mirror folder of our own; DLNOTES_* variables cleared."""
    monkeypatch.delenv("DLNOTES_MIRROR", raising=False)
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache", tmp_path / "mirror"


def _install(monkeypatch, mirror: Path, name: str, files: dict[str, bytes], extract=False) -> None:
    """Put ``files`` into the mirror under the registry entry's folder and point the entry at them."""
    entry = REGISTRY[name]
    (mirror / entry.mirror_path).mkdir(parents=True, exist_ok=True)
    for file, data in files.items():
        (mirror / entry.mirror_path / file).write_bytes(data)
    patched = dataclasses.replace(
        entry, urls=(), files=tuple(DataFile(f, _sha(d), extract=extract) for f, d in files.items())
    )
    monkeypatch.setitem(REGISTRY, name, patched)


def _mnist_files(n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(n_test) % 10),
    }


def test_mnist_loader_reads_idx_through_torchvision(env, monkeypatch):
    cache, mirror = env
    files = _mnist_files()
    _install(monkeypatch, mirror, "fashion-mnist", files)
    data = load_images("fashion-mnist", val=2, seed=1, mirror=mirror, progress=False)
    X, y = data["train"]
    assert X.shape == (4, 1, 28, 28) and X.dtype == torch.float32 and data["val"][0].shape[0] == 2
    assert data["test"][1].tolist() == [0, 1, 2, 3]
    raw = np.frombuffer(gzip.decompress(files["train-images-idx3-ubyte.gz"])[16:], np.uint8)
    mean = raw.mean() / 255
    assert data.mean[0] != pytest.approx(0) and "mean" in data.normalization
    assert data.classes[0] == "T-shirt/top" and data.dataset == "fashion-mnist"
    unit = load_images("fashion-mnist", normalization="unit", mirror=mirror, progress=False)
    all_train = torch.cat([unit["train"][0]])
    assert all_train.mean().item() == pytest.approx(mean, abs=1e-6)
    sym = load_images("fashion-mnist", normalization="symmetric", mirror=mirror, progress=False)
    assert sym["train"][0].min() >= -1 and sym["train"][0].max() <= 1


def test_same_seed_same_split(env, monkeypatch):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files(n_train=20))
    a = load_images("mnist", val=0.25, seed=3, mirror=mirror, progress=False)
    b = load_images("mnist", val=0.25, seed=3, mirror=mirror, progress=False)
    c = load_images("mnist", val=0.25, seed=4, mirror=mirror, progress=False)
    assert torch.equal(a["val"][0], b["val"][0]) and len(a["val"][0]) == 5
    assert not torch.equal(a["val"][0], c["val"][0])


def test_fetch_from_a_file_url_mirror_and_reuse_the_cache(env, monkeypatch):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files())
    folder = fetch("mnist", mirror=mirror.as_uri(), progress=False)
    assert sorted(p.name for p in folder.glob("*.gz")) == sorted(_mnist_files())
    for p in mirror.rglob("*.gz"):
        p.unlink()  # the cache alone must now suffice
    assert fetch("mnist", progress=False) == folder


def test_checksum_mismatch_names_every_place_and_leaves_nothing(env, monkeypatch):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files())
    (mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    with pytest.raises(DataError) as err:
        fetch("mnist", mirror=mirror, progress=False)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz of dataset mnist" in message
    assert "checksum mismatch" in message and "DLNOTES_MIRROR" in message
    assert str(cache / "mnist") in message
    assert not list((cache / "mnist").glob("*.part"))
    assert not (cache / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_offline_miss_says_what_to_do(env):
    with pytest.raises(DataError, match="DLNOTES_MIRROR is not set") as err:
        fetch(dataclasses.replace(REGISTRY["mnist"], urls=()), progress=False)
    assert "dlnotes data fetch mnist" in str(err.value)


def test_unknown_dataset_suggests_the_close_name():
    with pytest.raises(DataError, match="unknown dataset 'minst'. Did you mean 'mnist'"):
        load_images("minst")


def test_damaged_cache_file_is_replaced_and_verify_reports(env, monkeypatch):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files())
    folder = fetch("mnist", mirror=mirror, progress=False)
    target = folder / "train-labels-idx1-ubyte.gz"
    good = target.read_bytes()
    target.write_bytes(b"bitrot")
    assert any(line.startswith("damaged  mnist/train-labels") for line in verify_cache())
    assert not target.exists()
    fetch("mnist", mirror=mirror, progress=False)
    assert target.read_bytes() == good
    assert all(line.startswith("ok") for line in verify_cache())


def test_verify_finds_damaged_derived_files_and_the_next_load_rebuilds_them(env, monkeypatch):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files())
    first = load_images("mnist", normalization="none", mirror=mirror, progress=False)
    tensors = cache / "mnist" / "tensors.pt"
    raw = cache / "mnist" / "torchvision" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    assert tensors.exists() and raw.exists()
    assert not [line for line in verify_cache() if line.startswith("damaged")]

    # A truncated tensor file: named, removed, and rebuilt by the next load.
    tensors.write_bytes(tensors.read_bytes()[:100])
    damaged = [line for line in verify_cache() if line.startswith("damaged")]
    assert damaged == ["damaged  mnist/tensors.pt: checksum mismatch (damaged since it was made); "
                       "removed, the next load rebuilds it"]  # fmt: skip
    assert not tensors.exists()
    again = load_images("mnist", normalization="none", mirror=mirror, progress=False)
    assert torch.equal(again["train"][0], first["train"][0]) and tensors.exists()

    # A flipped byte in a decompressed file: found against its archive; it and the tensor file
    # baked from it are removed.
    data = bytearray(raw.read_bytes())
    data[200] ^= 0xFF
    raw.write_bytes(bytes(data))
    damaged = [line for line in verify_cache() if line.startswith("damaged")]
    assert any("raw/train-images-idx3-ubyte (and the folder" in d and "differs from" in d
               for d in damaged) and any("tensors.pt: made from a damaged file" in d
                                          for d in damaged)  # fmt: skip
    assert not raw.exists() and not tensors.exists()
    again = load_images("mnist", normalization="none", mirror=mirror, progress=False)
    assert torch.equal(again["train"][0], first["train"][0]) and raw.exists()


def test_a_derived_cache_is_checked_before_use_and_rebuilt_in_one_line(env, monkeypatch, capsys):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files())
    first = load_images("mnist", normalization="none", mirror=mirror, progress=False)
    tensors = cache / "mnist" / "tensors.pt"
    raw = cache / "mnist" / "torchvision" / "MNIST" / "raw" / "train-images-idx3-ubyte"

    # A flipped byte in the tensor file itself (same size): found by its recorded checksum.
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tensors.write_bytes(bytes(data))
    again = load_images("mnist", normalization="none", mirror=mirror, progress=False)
    out = capsys.readouterr().out
    assert f"dataset cache {tensors}: checksum mismatch" in out and "rebuilding it" in out
    assert torch.equal(again["train"][0], first["train"][0])

    # Made from other downloads (here: the registry's checksum changed): rebuilt, not served.
    other = dataclasses.replace(REGISTRY["mnist"], files=tuple(
        dataclasses.replace(e, sha256="0" * 64) if i == 0 else e
        for i, e in enumerate(REGISTRY["mnist"].files)))  # fmt: skip
    from dlnotes.data.store import load_derived

    calls = []
    with monkeypatch.context() as patched:
        patched.setitem(REGISTRY, "mnist", other)
        load_derived(tensors, "mnist", lambda: calls.append(1) or {"x": torch.zeros(1)})
    assert calls == [1] and "made from other downloads" in capsys.readouterr().out

    # A damaged decompressed file is never read at load time: a rebuild decompresses afresh.
    data = bytearray(raw.read_bytes())
    data[200] ^= 0xFF
    raw.write_bytes(bytes(data))
    tensors.unlink()
    again = load_images("mnist", normalization="none", mirror=mirror, progress=False)
    assert torch.equal(again["train"][0], first["train"][0])


def test_a_silent_mirror_fails_within_seconds(env, monkeypatch):
    import socket
    import time

    from dlnotes.data.store import SILENT_S

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()  # accepts connections, never answers
    try:
        offline = dataclasses.replace(REGISTRY["mnist"], urls=())
        began = time.monotonic()
        with pytest.raises(DataError, match="could not get"):
            fetch(offline, mirror=f"http://127.0.0.1:{server.getsockname()[1]}", progress=False)
        assert time.monotonic() - began < SILENT_S + 5
    finally:
        server.close()


def test_unwritable_cache_is_a_clear_error(env, monkeypatch, tmp_path):
    cache, mirror = env
    _install(monkeypatch, mirror, "mnist", _mnist_files())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="is not writable.*DLNOTES_CACHE"):
        fetch("mnist", cache=blocker / "cache", mirror=mirror, progress=False)


def _tiny_imagenet(classes=("n001", "n002", "n003"), per_class=2):
    files = {
        "tiny-imagenet-200/wnids.txt": "\n".join(classes).encode(),
        "tiny-imagenet-200/words.txt": b"n001\tgoldfish, Carassius auratus\nn002\ttabby\nn003\treel\n",
    }
    lines = []
    for i, wnid in enumerate(classes):
        for j in range(per_class):
            files[f"tiny-imagenet-200/train/{wnid}/images/{wnid}_{j}.JPEG"] = _jpeg((40 * i, 0, 0))
        files[f"tiny-imagenet-200/train/{wnid}/{wnid}_boxes.txt"] = b""
        files[f"tiny-imagenet-200/val/images/val_{i}.JPEG"] = _jpeg((0, 40 * i, 0))
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t7\t7")
    files["tiny-imagenet-200/val/val_annotations.txt"] = "\n".join(lines).encode()
    return files


def test_tiny_imagenet_tree_decodes_once_into_a_cached_tensor(env, monkeypatch):
    cache, mirror = env
    _install(
        monkeypatch,
        mirror,
        "tiny-imagenet-100-subset",
        {"tiny-imagenet-200-subset100.tar.gz": _tar(_tiny_imagenet())},
        extract=True,
    )
    data = load_images(
        "tiny-imagenet-100-subset", normalization="none", mirror=mirror, progress=False
    )
    X, y = data["train"]
    assert X.shape == (6, 3, 8, 8) and X.dtype == torch.uint8 and y.tolist() == [0, 0, 1, 1, 2, 2]
    assert data["val"][1].tolist() == [0, 1, 2]
    assert data.classes == ["goldfish", "tabby", "reel"]
    assert (cache / "tiny-imagenet-100-subset" / "tensors-native.pt").exists()
    # The unpacked tree is no longer needed once decoded; resizing makes a second cached size.
    resized = load_images("tiny-imagenet-100-subset", size=4, normalization="unit", mirror=mirror,
                          progress=False)  # fmt: skip
    assert resized["train"][0].shape == (6, 3, 4, 4)
    import shutil

    shutil.rmtree(
        cache / "tiny-imagenet-100-subset" / "unpacked-tiny-imagenet-200-subset100.tar.gz"
    )
    again = load_images("tiny-imagenet-100-subset", normalization="none", progress=False)
    assert torch.equal(again["train"][0], X)


def test_horse2zebra_folders_with_a_greyscale_image(env, monkeypatch):
    cache, mirror = env
    files = {
        "horse2zebra/trainA/a1.jpg": _jpeg((200, 100, 50), (16, 16)),
        "horse2zebra/trainA/a2.jpg": _jpeg(128, (16, 16), mode="L"),
        "horse2zebra/trainB/b1.jpg": _jpeg((0, 0, 0), (16, 16)),
        "horse2zebra/testA/t1.jpg": _jpeg((1, 2, 3), (16, 16)),
        "horse2zebra/testB/t2.jpg": _jpeg((1, 2, 3), (16, 16)),
    }
    _install(monkeypatch, mirror, "horse2zebra-subset500",
             {"horse2zebra-subset500.tar.gz": _tar(files)}, extract=True)  # fmt: skip
    data = load_images("horse2zebra-subset500", size=8, normalization="symmetric", mirror=mirror,
                       progress=False)  # fmt: skip
    X, y = data["trainA"]
    assert X.shape == (2, 3, 8, 8) and y.tolist() == [0, 0] and data["trainB"][1].tolist() == [1]
    grey = X[1]
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])
    assert data.classes == ["horse", "zebra"]


def test_cifar10_python_batches_through_torchvision(env, monkeypatch):
    from torchvision import datasets

    cache, _ = env
    rng = np.random.default_rng(0)
    batches = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch"]:  # fmt: skip
        batches[name] = pickle.dumps({"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                                      "labels": [1, 2]})  # fmt: skip
    batches["batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
    archive = _tar({f"cifar-10-batches-py/{k}": v for k, v in batches.items()})
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in batches.items()}
    # torchvision checks each batch against its md5 list; point it at our tiny files.
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]]
                                                          for i in range(1, 6)])  # fmt: skip
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                                    "md5": md5["batches.meta"]})  # fmt: skip
    monkeypatch.setitem(REGISTRY, "cifar10", dataclasses.replace(
        REGISTRY["cifar10"], urls=("file://" + str(cache.parent / "official"),),
        files=(DataFile("cifar-10-python.tar.gz", _sha(archive), extract=True),)))  # fmt: skip
    (cache.parent / "official").mkdir()
    (cache.parent / "official" / "cifar-10-python.tar.gz").write_bytes(archive)
    data = load_images("cifar10", normalization="none", progress=False)
    assert data["train"][0].shape == (10, 3, 32, 32) and data["test"][1].tolist() == [1, 2]
    assert data.classes == [f"c{i}" for i in range(10)]


def test_interrupted_extraction_is_not_taken_for_complete(env, monkeypatch):
    cache, mirror = env
    archive = _tar(_tiny_imagenet())
    _install(monkeypatch, mirror, "tiny-imagenet-100-subset",
             {"tiny-imagenet-200-subset100.tar.gz": archive}, extract=True)  # fmt: skip
    folder = cache / "tiny-imagenet-100-subset"
    folder.mkdir(parents=True)
    half = folder / ".unpacking-tiny-imagenet-200-subset100.tar.gz-12345"
    (half / "tiny-imagenet-200").mkdir(parents=True)  # what a killed run leaves behind
    fetch("tiny-imagenet-100-subset", mirror=mirror, progress=False)
    done = folder / "unpacked-tiny-imagenet-200-subset100.tar.gz" / "tiny-imagenet-200"
    assert (done / "val" / "val_annotations.txt").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".unpacking") and p != half]


def test_corrupt_archive_with_matching_checksum_is_reported(env, monkeypatch):
    cache, mirror = env
    _install(monkeypatch, mirror, "imdb", {"aclImdb_labeled.tar.gz": b"not a tar archive"},
             extract=True)  # fmt: skip
    with pytest.raises(DataError, match="(?s)archive .* is damaged .*; delete it"):
        fetch("imdb", mirror=mirror, progress=False)
    assert not [p for p in (cache / "imdb").iterdir() if p.name.startswith(".unpacking")]


def test_imdb_tree_texts_labels_and_vocab(env, monkeypatch):
    cache, mirror = env
    files = {"aclImdb/README": b"readme"}
    reviews = {("train", "pos"): ["A great film!<br />Great.", "good"],
               ("train", "neg"): ["Bad, bad film.", "awful"],
               ("test", "pos"): ["great"], ("test", "neg"): ["bad"]}  # fmt: skip
    for (split, pol), texts in reviews.items():
        for i, text in enumerate(texts):
            files[f"aclImdb/{split}/{pol}/{i}_7.txt"] = text.encode()
    _install(monkeypatch, mirror, "imdb", {"aclImdb_labeled.tar.gz": _tar(files)}, extract=True)
    data = load_imdb(mirror=mirror, progress=False)
    assert data.texts["train"] == ["Bad, bad film.", "awful", "A great film!<br />Great.", "good"]
    assert data.labels["train"].tolist() == [0, 0, 1, 1] and data.labels["test"].tolist() == [0, 1]
    assert (cache / "imdb" / "reviews.pt").exists()
    assert tokenize("A great film!<br />Isn't it?") == ["a", "great", "film", "isn't", "it"]
    vocab = Vocab.build(data.texts["train"], size=5)
    assert vocab.itos == ["<pad>", "<unk>", "bad", "film", "great"]
    ids, lengths = vocab.encode(["great bad movie", "film"], max_len=2)
    assert ids.tolist() == [[4, 2], [3, 0]] and lengths.tolist() == [2, 1]
    # Keras' pad_sequences default: keep the last words, pad at the start; token lists work too.
    ids, lengths = vocab.encode([["great", "bad", "movie"], ["film"]], max_len=2, keep="tail")
    assert ids.tolist() == [[2, 1], [0, 3]] and lengths.tolist() == [2, 1]
    with pytest.raises(ValueError, match="keep must be"):
        vocab.encode(["film"], max_len=2, keep="middle")


def test_unverifiable_official_file_needs_consent(env):
    with pytest.raises(DataError, match="no checksum is recorded for horse2zebra.zip"):
        fetch("horse2zebra", progress=False)


def test_standins_are_named_and_shaped_like_the_real_sets():
    digits = standin_digits()
    assert digits.dataset.startswith("stand-in") and digits["train"][0].shape[1:] == (1, 28, 28)
    assert len(digits["train"][0]) + len(digits["test"][0]) == 1797
    reviews = standin_reviews(40, seed=1)
    assert reviews.dataset.startswith("stand-in") and len(reviews.texts["test"]) == 20
    assert sorted(reviews.labels["train"].tolist()) == [0] * 10 + [1] * 10
    assert reviews.texts == standin_reviews(40, seed=1).texts != standin_reviews(40, seed=2).texts
    fake = standin_images(8, shape=(3, 16, 16), classes=2)
    assert fake.dataset.startswith("stand-in") and fake["train"][0].shape == (4, 3, 16, 16)


def test_standin_pets_has_horse2zebra_splits_and_the_stripes_tell_the_domains_apart():
    pets = standin_pets(6, size=24, n_test=3, seed=1)
    assert set(pets.splits) == {"trainA", "trainB", "testA", "testB"}
    assert pets["trainA"][0].shape == (6, 3, 24, 24) and pets["testB"][0].dtype == torch.uint8
    assert pets["trainA"][1].tolist() == [0] * 6 and pets["testB"][1].tolist() == [1] * 3

    # Stripes: neighbouring pixels differ more in 'zebra' images than in plain 'horse' ones.
    def roughness(x):
        return x.float().diff(dim=-1).abs().mean()

    assert roughness(pets["trainB"][0]) > 1.5 * roughness(pets["trainA"][0])
    assert torch.equal(pets["trainA"][0], standin_pets(6, size=24, n_test=3, seed=1)["trainA"][0])


@pytest.mark.mirror
@pytest.mark.skipif(not os.environ.get("DLNOTES_MIRROR"), reason="DLNOTES_MIRROR is not set")
def test_the_mirror_matches_the_registry():
    mirror = Path(os.environ["DLNOTES_MIRROR"])
    checked = 0
    for dataset in REGISTRY.values():
        if not dataset.mirror_path:
            continue
        for entry in dataset.files:
            path = mirror / dataset.mirror_path / entry.name
            assert path.exists(), f"the mirror lacks {path}"
            assert file_digest(path) == entry.sha256, f"{path} does not match the registry"
            if entry.md5:
                assert file_digest(path, "md5") == entry.md5
            checked += 1
    assert checked == 12
