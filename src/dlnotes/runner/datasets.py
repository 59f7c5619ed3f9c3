"""The datasets a chapter run needs, brought into the cache before its kernel starts.

Two runs that start on a cold cache at the same time (``--jobs 2``, or two terminals) would
otherwise both unpack the same archive and both rebuild MNIST's decompressed files, and the
second would fail or delete what the first is reading. So the runner prepares each dataset a
chapter uses under a lock per dataset (``<cache>/.locks/<name>.lock``): the first run fetches,
verifies, unpacks and derives; a second one waits for it, then finds the cache warm. The
kernel's loaders then only read.

Why the runner and not the loaders: every chapter reaches the loaders, so a change there marks
every report stale (the fingerprint covers them), and re-executing all seven is hours of CPU.
The loaders' own writes are atomic already (a temporary name renamed into place), which keeps a
plain ``papermill`` run safe from torn files; only two of them racing on a cold cache is not
covered without the runner.

Which datasets: the registry names the chapter's code cells spell out, the defaults of the
``dlnotes.data`` loaders it calls without a name, and the parameter values that are dataset
names (chapter 05's ``DATASET``); none when the run's ``STANDIN`` is true (stand-in data).
"""

from __future__ import annotations

import ast
import errno
import fcntl
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["chapter_datasets", "dataset_lock", "prepare_datasets"]


def _loader_defaults() -> dict[str, str]:
    """Return {loader name: the dataset it reads when called without one}."""
    from .. import data
    from ..data.registry import REGISTRY

    defaults = {}
    for attr in data.__all__:
        fn = getattr(data, attr)
        if not callable(fn) or inspect.isclass(fn):
            continue
        param = inspect.signature(fn).parameters.get("name")
        if param is not None and param.default in REGISTRY:
            defaults[attr] = param.default
    return defaults


def chapter_datasets(notebook, params: dict[str, Any]) -> list[str]:
    """Return the registry datasets a run of ``notebook`` (as jupytext reads it) with ``params``
    (resolved) reads, in a stable order. The parameters cell's defaults do not count: the
    parameters' values are in ``params``."""
    from ..data.registry import REGISTRY

    if params.get("STANDIN") is True:
        return []
    defaults = _loader_defaults()
    found = {v for v in params.values() if isinstance(v, str) and v in REGISTRY}
    for cell in notebook.cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell of IPython magics: no Python to read
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in REGISTRY:
                found.add(node.value)
            elif isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                named = node.args or any(k.arg == "name" for k in node.keywords)
                if called in defaults and not named:
                    found.add(defaults[called])
    return sorted(found)


@contextmanager
def dataset_lock(name: str, cache: Path, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold ``name``'s lock in ``cache``; wait (saying so once) while another run holds it."""
    folder = cache / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            say(f"dataset {name}: another run is preparing it; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_datasets(names: list[str], say: Callable[[str], None] = print) -> None:
    """Fetch, verify and unpack each dataset, and build the derived files that do not depend on
    a chapter's settings (MNIST's and Fashion-MNIST's tensors, IMDB's reviews), each under its
    dataset's lock. Uses ``$DLNOTES_CACHE`` and ``$DLNOTES_MIRROR`` as the kernel will.

    Derived files that depend on a setting (an image size) are left to the kernel: they are
    written under a temporary name and renamed, so two runs making one at once cost time, not
    correctness.
    """
    from ..data import load_images, load_imdb
    from ..data.store import cache_dir, fetch

    for name in names:
        with dataset_lock(name, cache_dir(), say):
            folder = fetch(name, progress=False)
            if name in ("mnist", "fashion-mnist") and not (folder / "tensors.pt").exists():
                load_images(name, normalization="none", progress=False)
            elif name == "imdb" and not (folder / "reviews.pt").exists():
                load_imdb(name, progress=False)
