"""Run a chapter: keep its Jupytext pair in sync, check parameters, execute with papermill,
and write the executed report, its provenance and its metrics atomically.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import write_atomic
from .params import ChapterParams, ParameterError, read_parameters, validate
from .report import code_hash, metrics_from_notebook

__all__ = [
    "ChapterError",
    "RunResult",
    "find_root",
    "list_chapters",
    "resolve_chapter",
    "sync_pair",
    "pair_in_sync",
    "report_path",
    "metrics_path",
    "staleness",
    "refresh_prose",
    "run_chapter",
]

CHAPTER_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class ChapterError(RuntimeError):
    """A chapter that cannot be found, synced or executed; the message says what to do."""


@dataclass(frozen=True)
class RunResult:
    """What one chapter run produced."""

    chapter: str
    report: Path
    metrics: dict[str, Any]
    seconds: float


def find_root(start: str | Path | None = None) -> Path:
    """Return the project root: ``$DLNOTES_ROOT``, or the first parent holding notebooks/ and book/."""
    if os.environ.get("DLNOTES_ROOT"):
        return Path(os.environ["DLNOTES_ROOT"]).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "book" / "_toc.yml").is_file():
            return folder
    raise ChapterError(
        f"no dlnotes project found at or above {here}: run from the repository (the folder with "
        "notebooks/ and book/), or set DLNOTES_ROOT"
    )


def list_chapters(root: Path) -> list[str]:
    """Return the chapter names (NN_slug) found in notebooks/, sorted."""
    return sorted(p.stem for p in (root / "notebooks").glob("*.py") if CHAPTER_NAME.match(p.stem))


def resolve_chapter(root: Path, name: str) -> str:
    """Return the chapter named by ``name`` ('07_activations', '07', 'activations' or a path)."""
    chapters = list_chapters(root)
    stem = Path(name).stem
    matches = [c for c in chapters if stem in (c, c[:2], c[3:])]
    if len(matches) == 1:
        return matches[0]
    raise ChapterError(
        f"unknown chapter {name!r}; the chapters are: {', '.join(chapters) or '(none)'}"
    )


def report_path(root: Path, chapter: str) -> Path:
    """Return where the executed report of ``chapter`` lives in the book."""
    return root / "book" / "chapters" / f"{chapter}.ipynb"


def metrics_path(report: Path) -> Path:
    """Return the metrics JSON path that belongs beside ``report``."""
    return report.with_name(report.stem + ".metrics.json")


def _cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in notebook.cells
    ]


def pair_in_sync(py: Path, ipynb: Path) -> bool:
    """Return True when the .ipynb has the same cells as the .py and no outputs."""
    import jupytext

    if not ipynb.exists():
        return False
    paired = jupytext.read(ipynb)
    no_outputs = all(not c.get("outputs") for c in paired.cells if c.cell_type == "code")
    return no_outputs and _cells(jupytext.read(py)) == _cells(paired)


def sync_pair(py: Path) -> bool:
    """Write ``py``'s output-free .ipynb twin if it differs; return True when it was written.

    The .py is the source of truth. An .ipynb edited after the .py (in a Jupyter without
    Jupytext) is not overwritten silently: that is an error that says how to carry its edits over.
    """
    import jupytext

    ipynb = py.with_suffix(".ipynb")
    if pair_in_sync(py, ipynb):
        return False
    if ipynb.exists() and ipynb.stat().st_mtime > py.stat().st_mtime + 1:
        raise ChapterError(
            f"{ipynb} differs from {py.name} and is newer: carry its edits into the source with "
            f"`jupytext --sync {ipynb}` (or delete it to regenerate it from {py.name})"
        )
    notebook = jupytext.read(py)
    # Plain `papermill` needs a kernel name, and Jupyter needs the pairing to save both files.
    notebook.metadata.setdefault("kernelspec", dict(KERNELSPEC))
    notebook.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    write_atomic(ipynb, jupytext.writes(notebook, fmt="ipynb"))
    return True


def staleness(root: Path, chapter: str) -> str | None:
    """Return why ``chapter``'s report must be re-executed ('missing', 'stale'), or None."""
    import jupytext
    import nbformat

    report = report_path(root, chapter)
    if not report.exists():
        return "missing"
    recorded = nbformat.read(report, as_version=4).metadata.get("dlnotes", {}).get("source_hash")
    if recorded != code_hash(jupytext.read(root / "notebooks" / f"{chapter}.py")):
        return "stale"
    return None


def recorded_settings(root: Path, chapter: str) -> tuple[str | None, dict[str, Any]]:
    """Return the profile and parameter overrides ``chapter``'s report was made with.

    ``(None, {})`` when there is no report. The device is left out (a rerun picks its own), and so
    is any parameter the chapter no longer has.
    """
    import nbformat

    report = report_path(root, chapter)
    if not report.exists():
        return None, {}
    recorded = nbformat.read(report, as_version=4).metadata.get("dlnotes", {})
    known = read_parameters(root / "notebooks" / f"{chapter}.py").params
    overrides = {
        k: v
        for k, v in recorded.get("overrides", {}).items()
        if k in known and k not in ("PROFILE", "DEVICE")
    }
    return recorded.get("profile"), overrides


def refresh_prose(root: Path, chapter: str) -> bool:
    """Copy the source's markdown into the report when only prose changed; return True if written.

    Code cells (and so outputs) are matched by position; this is only valid when the code hash
    matches, which the caller checks with :func:`staleness`.
    """
    import jupytext
    import nbformat

    report_file = report_path(root, chapter)
    report = nbformat.read(report_file, as_version=4)
    source = jupytext.read(root / "notebooks" / f"{chapter}.py")
    if [c.source for c in source.cells if c.cell_type == "markdown"] == [
        c.source for c in report.cells if c.cell_type == "markdown"
    ]:
        return False
    executed = iter(
        c
        for c in report.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    )
    injected = [c for c in report.cells if "injected-parameters" in c.metadata.get("tags", [])]
    cells = []
    for cell in source.cells:
        cells.append(next(executed) if cell.cell_type == "code" else cell)
        if "parameters" in cell.metadata.get("tags", []):
            cells.extend(injected)
    report.cells = cells
    write_atomic(report_file, nbformat.writes(report))
    return True


def _resolve_device(name: str) -> tuple[str, str]:
    import torch  # imported here: listing chapters must not pay for torch

    from .env import describe_device, pick_device

    try:
        device = pick_device(name)
    except (ValueError, RuntimeError) as exc:
        raise ParameterError(str(exc)) from None
    return device.type, describe_device(device) + f", torch {torch.__version__}"


def run_chapter(
    root: Path,
    chapter: str,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    output: Path | None = None,
    progress: bool = True,
    cell_timeout: float | None = None,
) -> RunResult:
    """Execute ``chapter`` with papermill and write its report, provenance and metrics.

    Parameters are validated before anything runs. The report and metrics are replaced only after
    a successful run, so a failed or interrupted run leaves the previous ones untouched.
    ``cell_timeout`` (seconds) fails the run when one cell runs longer: for tests and CI, where a
    hung kernel should fail fast rather than hold the job until its own limit.
    """
    import jupytext
    import nbformat
    import papermill
    from nbclient.exceptions import CellTimeoutError

    from . import __version__

    chapter = resolve_chapter(root, chapter)
    py = root / "notebooks" / f"{chapter}.py"
    spec: ChapterParams = read_parameters(py)
    wanted = dict(overrides or {})
    if profile is not None:
        wanted["PROFILE"] = profile
    if device is not None:
        wanted["DEVICE"] = device
    params = validate(chapter, spec, wanted)
    device_type, device_text = _resolve_device(params.get("DEVICE", spec.params["DEVICE"].default))
    params["DEVICE"] = device_type
    # Inject the profile too, so the report's first cells say how it ran.
    params.setdefault(
        "PROFILE", spec.params["PROFILE"].default if "PROFILE" in spec.params else None
    )
    params = {k: v for k, v in params.items() if v is not None or k in wanted}
    sync_pair(py)

    output = Path(output) if output else report_path(root, chapter)
    partial = root / "build" / "runs" / f"{chapter}.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    try:
        papermill.execute_notebook(
            str(py.with_suffix(".ipynb")),
            str(partial),
            parameters=params,
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(root / "notebooks"),
            execution_timeout=cell_timeout,
        )
    except CellTimeoutError:
        raise ChapterError(
            f"{chapter}: a cell ran longer than {cell_timeout:g} s (--cell-timeout) and was "
            f"stopped; the partly executed notebook is {partial}; the previous report {output} "
            "is unchanged."
        ) from None
    except papermill.PapermillExecutionError as exc:
        raise ChapterError(
            f"{chapter} failed in code cell {exc.exec_count} (cell index {exc.cell_index}): "
            f"{exc.ename}: {exc.evalue}\nThe partly executed notebook is {partial}; "
            f"the previous report {output} is unchanged."
        ) from None
    seconds = time.perf_counter() - t0

    notebook = nbformat.read(partial, as_version=4)
    resolved = spec.resolved(params)
    notebook.metadata["dlnotes"] = {
        "chapter": chapter,
        "profile": resolved.get("PROFILE"),
        "parameters": resolved,
        "overrides": {k: params[k] for k in wanted},  # what the caller asked for
        "device": device_text,
        "dlnotes": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(seconds, 1),
        "source_hash": code_hash(jupytext.read(py)),
    }
    metrics = metrics_from_notebook(notebook)
    write_atomic(output, nbformat.writes(notebook))
    write_atomic(metrics_path(output), json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    return RunResult(chapter, output, metrics, seconds)


def describe_chapters(root: Path) -> str:
    """Return a listing of every chapter with its parameters, for ``dlnotes run --list``."""
    lines = []
    for chapter in list_chapters(root):
        spec = read_parameters(root / "notebooks" / f"{chapter}.py")
        lines.append(f"{chapter}  (profiles: {', '.join(spec.profiles) or 'none'})")
        lines += [f"    {p.describe()}" for p in spec.params.values()]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `dlnotes run` command")
