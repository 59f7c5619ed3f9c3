"""Getting dataset files: cache → mirror → official URL, every file checked, archives unpacked once.

Nothing here runs at import. Writes are atomic: a download goes to a temporary file that is
renamed only after its checksum matched, and an archive unpacks into a temporary folder that is
renamed into place only when complete, so an interrupted fetch is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from ..files import atomic_path, why_unwritable, write_atomic
from .registry import DataFile, Dataset, get

__all__ = [
    "DataError",
    "cache_dir",
    "mirror_base",
    "fetch",
    "fetch_file",
    "verify_cache",
    "checksum_ok",
    "file_digest",
    "load_derived",
]

_CHUNK = 1 << 20


class DataError(RuntimeError):
    """A dataset that cannot be found, verified or unpacked; the message says what to do."""


def cache_dir(cache: str | Path | None = None) -> Path:
    """Return the cache folder: ``cache``, else ``$DLNOTES_CACHE``, else ``~/.cache/dlnotes``."""
    return Path(cache or os.environ.get("DLNOTES_CACHE") or Path.home() / ".cache" / "dlnotes")


def mirror_base(mirror: str | Path | None = None) -> str | None:
    """Return the mirror (folder or URL base): ``mirror``, else ``$DLNOTES_MIRROR``, else None."""
    value = mirror if mirror is not None else os.environ.get("DLNOTES_MIRROR")
    return str(value) if value else None


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Return the hex digest of a file."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_ok(path: Path, entry: DataFile) -> bool:
    """Return True when ``path`` matches the entry's sha256 (or, lacking one, its md5)."""
    if entry.sha256:
        return file_digest(path, "sha256") == entry.sha256
    if entry.md5:
        return file_digest(path, "md5") == entry.md5
    return True  # nothing to check against: the caller allowed unverified files


def _stamp_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.ok")


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _mark_verified(path: Path) -> None:
    """Record that ``path``, as it is now (size, mtime), passed its checksum."""
    _stamp_file(path).write_text(_stamp(path))


def _verified(path: Path, entry: DataFile) -> bool:
    """Check a cached file, hashing it only when it changed since its last successful check."""
    stamp = _stamp_file(path)
    if stamp.exists() and stamp.read_text() == _stamp(path):
        return True
    if not checksum_ok(path, entry):
        return False
    _mark_verified(path)
    return True


def _sources(dataset: Dataset, entry: DataFile, mirror: str | None) -> list[str]:
    sources = []
    if mirror and dataset.mirror_path:
        base = mirror.rstrip("/")
        if "://" not in base:
            base = Path(base).expanduser().resolve().as_uri()
        sources.append(f"{base}/{dataset.mirror_path}/{entry.name}")
    sources += [url.rstrip("/") + "/" + entry.name for url in dataset.urls]
    return sources


# Seconds a source may stay silent (connecting, or between two reads) before the next is tried:
# a mirror that does not answer fails in seconds, not a minute per file.
SILENT_S = 5


def _copy_url(url: str, target: Path, label: str, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "dlnotes"})
    with urllib.request.urlopen(request, timeout=SILENT_S) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress,
                  leave=False) as bar:  # fmt: skip
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _writable(folder: Path) -> None:
    if (why := why_unwritable(folder)) is not None:
        raise DataError(
            f"the dataset cache {folder} is not writable ({why}); set DLNOTES_CACHE to a "
            "folder you can write to"
        )


def fetch_file(
    dataset: str | Dataset,
    entry: DataFile,
    *,
    cache: str | Path | None = None,
    mirror: str | Path | None = None,
    progress: bool = True,
    allow_unverified: bool = False,
) -> Path:
    """Return the path of one verified file of ``dataset`` in the cache, getting it if needed."""
    dataset = get(dataset)
    folder = cache_dir(cache) / dataset.name
    target = folder / entry.name
    if target.exists() and _verified(target, entry):
        return target
    _writable(folder)
    if not (entry.sha256 or entry.md5) and not allow_unverified:
        from .registry import REGISTRY

        checked = [d.name for d in REGISTRY.values() if d.variant_of == dataset.name]
        alternative = f"the verified variant {', '.join(checked)}" if checked else "a mirror"
        raise DataError(
            f"{dataset.name}: no checksum is recorded for {entry.name}, so it cannot be verified. "
            "Fetch it with allow_unverified=True (`dlnotes data fetch --allow-unverified "
            f"{dataset.name}`) if you trust the source, or use {alternative}."
        )
    tried = []
    if target.exists():
        target.unlink()  # damaged: fetch it again
        tried.append(f"cache {target}: checksum mismatch, removed")
    else:
        tried.append(f"cache {target}: missing")
    sources = _sources(dataset, entry, mirror_base(mirror))
    if not dataset.mirror_path:
        tried.append(f"mirror: the mirror does not hold {dataset.name}")
    elif not mirror_base(mirror):
        tried.append("mirror: DLNOTES_MIRROR is not set")
    for url in sources:
        tmp = folder / f".{entry.name}.{os.getpid()}.part"
        try:
            _copy_url(url, tmp, f"{dataset.name}/{entry.name}", progress)
            if not checksum_ok(tmp, entry):
                tried.append(f"{url}: checksum mismatch (file damaged or a different version)")
                continue
            os.replace(tmp, target)
            _mark_verified(target)
            return target
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            tried.append(f"{url}: {reason}")
        finally:
            tmp.unlink(missing_ok=True)
    places = "\n  ".join(tried)
    raise DataError(
        f"could not get {entry.name} of dataset {dataset.name}. Tried:\n  {places}\n"
        "To fix: set DLNOTES_MIRROR to a folder or URL holding the dataset mirror "
        "(see the book's data page), or connect to the internet and run "
        f"`dlnotes data fetch {dataset.name}`."
    )


def _unpack(archive: Path, into: Path, progress: bool) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for member in tqdm(z.infolist(), desc=f"unpack {archive.name}", disable=not progress,
                               leave=False, unit="file"):  # fmt: skip
                z.extract(member, into)
        return
    with tarfile.open(archive) as tar:
        for member in tqdm(tar, desc=f"unpack {archive.name}", disable=not progress, leave=False,
                           unit="file"):  # fmt: skip
            tar.extract(member, into, filter="data")  # refuses absolute paths and links out


def fetch(
    name: str | Dataset,
    *,
    cache: str | Path | None = None,
    mirror: str | Path | None = None,
    progress: bool = True,
    allow_unverified: bool = False,
) -> Path:
    """Return the dataset's cache folder with every file verified and every archive unpacked."""
    dataset = get(name)
    folder = cache_dir(cache) / dataset.name
    for entry in dataset.files:
        path = fetch_file(dataset, entry, cache=cache, mirror=mirror, progress=progress,
                          allow_unverified=allow_unverified)  # fmt: skip
        if not entry.extract:
            continue
        done = folder / f"unpacked-{entry.name}"
        if done.is_dir():
            continue
        tmp = folder / f".unpacking-{entry.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _unpack(path, tmp, progress)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(
                f"{dataset.name}: the archive {path} is damaged ({exc}); delete it and run "
                f"`dlnotes data fetch {dataset.name}` again"
            ) from None
        os.replace(tmp, done)  # only a complete unpacking ever carries the final name
    return folder


def dataset_root(name: str | Dataset, **kwargs) -> Path:
    """Return the folder holding the dataset's files or unpacked tree (fetching it if needed)."""
    dataset = get(name)
    folder = fetch(dataset, **kwargs)
    archives = [e for e in dataset.files if e.extract]
    if not archives:
        return folder
    unpacked = folder / f"unpacked-{archives[0].name}"
    return (
        unpacked / dataset.folder
        if dataset.folder and (unpacked / dataset.folder).is_dir()
        else unpacked
    )


def _source_key(dataset: Dataset) -> str:
    return " ".join(f"{e.name}:{e.sha256 or e.md5 or 'unverified'}" for e in dataset.files)


def _record_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def _read_derived(path: Path, dataset: Dataset, *, rehash: bool):
    """Return (data, None) for a sound derived file, or (None, why it is not)."""
    import torch

    try:
        stamp, sha = _record_file(path).read_text().split()
    except (OSError, ValueError):
        return None, "no record of its checksum"
    if (rehash or stamp != _stamp(path)) and file_digest(path) != sha:
        return None, "checksum mismatch (damaged since it was made)"
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # any failure to read it back means it is unusable
        return None, f"unreadable ({type(exc).__name__})"
    if not isinstance(saved, dict) or saved.get("source") != _source_key(dataset):
        return None, "made from other downloads than the registry's"
    if stamp != _stamp(path):  # same content, touched: no need to hash it again next time
        _record_file(path).write_text(f"{_stamp(path)} {sha}")
    return saved["data"], None


def load_derived(path: Path, dataset: str | Dataset, build):
    """Return what ``build()`` makes from ``dataset``'s downloads, cached in ``path``.

    The file records the checksums of the downloads it was made from, and its own checksum is
    kept beside it (re-hashed only when its size or time changed, like the downloads). A file
    that is damaged, unreadable or made from other downloads is rebuilt, saying so in one line.
    """
    import torch

    dataset = get(dataset)
    if path.exists():
        data, why = _read_derived(path, dataset, rehash=False)
        if why is None:
            return data
        print(f"dataset cache {path}: {why}; rebuilding it from the verified downloads")
    data = build()
    with atomic_path(path) as tmp:
        torch.save({"source": _source_key(dataset), "data": data}, tmp)
        sha = file_digest(tmp)
    write_atomic(_record_file(path), f"{_stamp(path)} {sha}")
    return data


def _derived_damage(folder: Path, dataset: Dataset) -> list[tuple[Path, str]]:
    """Return the damaged files made from ``dataset``'s downloads in ``folder``, with why.

    Two kinds are checked: tensor files (``*.pt``, against the checksum recorded when they were
    made and the downloads they were made from) and files decompressed from a ``.gz`` download
    (compared byte for byte with the archive, so a flipped byte is found). A tensor file made after a damaged decompressed file is damaged too.
    """
    import gzip

    damaged = []
    for entry in dataset.files:
        if not entry.name.endswith(".gz") or not (folder / entry.name).exists():
            continue
        for copy in folder.glob(f"**/{entry.name[:-3]}"):
            with gzip.open(folder / entry.name) as src, open(copy, "rb") as out:
                while True:
                    a, b = src.read(_CHUNK), out.read(_CHUNK)
                    if a != b:
                        damaged.append((copy, f"differs from {entry.name}"))
                        break
                    if not a:
                        break
    if damaged:  # whatever was made from a damaged file is suspect
        damaged += [(p, "made from a damaged file") for p in folder.glob("*.pt")]
        return damaged
    for path in sorted(folder.glob("*.pt")):
        why = _read_derived(path, dataset, rehash=True)[1]
        if why is not None:
            damaged.append((path, why))
    return damaged


def verify_cache(cache: str | Path | None = None) -> list[str]:
    """Re-check every cached file against the registry, and every file derived from them;
    remove damaged ones and report each (the next load rebuilds a derived file)."""
    from .registry import REGISTRY

    report = []
    root = cache_dir(cache)
    for dataset in REGISTRY.values():
        for entry in dataset.files:
            path = root / dataset.name / entry.name
            if not path.exists():
                continue
            if checksum_ok(path, entry):
                _mark_verified(path)
                report.append(f"ok       {dataset.name}/{entry.name}")
            else:
                path.unlink()
                _stamp_file(path).unlink(missing_ok=True)
                shutil.rmtree(root / dataset.name / f"unpacked-{entry.name}", ignore_errors=True)
                report.append(f"damaged  {dataset.name}/{entry.name}: removed; fetch it again")
        folder = root / dataset.name
        if not folder.is_dir():
            continue
        for path, why in _derived_damage(folder, dataset):
            rel = path.relative_to(root)
            if path.suffix == ".pt":
                path.unlink(missing_ok=True)
                _record_file(path).unlink(missing_ok=True)
            else:  # decompressed files are written as one folder: remove it whole
                shutil.rmtree(path.parent, ignore_errors=True)
                rel = f"{rel} (and the folder {path.parent.relative_to(root)})"
            report.append(f"damaged  {rel}: {why}; removed, the next load rebuilds it")
    return report
