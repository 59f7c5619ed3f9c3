"""Run a chapter: check everything the input alone can show is wrong, execute the source as it
was when the run began with papermill, and install the report, its provenance and its metrics
atomically. A failed or interrupted run leaves the previous report as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import platform
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..files import why_unwritable, write_atomic
from ..params import ParameterError
from ..spec import validate
from . import dry
from .chapter import Chapter, ChapterError, list_chapters, metrics_from_notebook
from .datasets import chapter_datasets, prepare_datasets

__all__ = ["RunResult", "preflight", "run_chapter", "resolved_environment", "describe_chapters"]

PATH_VARIABLES = ("DLNOTES_MIRROR", "DLNOTES_CACHE")
MIRROR_PROBE_S = 5  # a mirror that does not answer a request in this time is refused


@dataclass(frozen=True)
class RunResult:
    """What one chapter run produced."""

    chapter: str
    report: Path
    metrics: dict[str, Any]
    seconds: float
    estimate: dict[str, Any] | None = None  # a dry run's prediction of the real run


def _resolve_device(name: str) -> tuple[str, str]:
    import torch  # imported here: listing chapters must not pay for torch

    from ..env import describe_device, pick_device

    try:
        device = pick_device(name)
    except (ValueError, RuntimeError) as exc:
        raise ParameterError(str(exc)) from None
    return device.type, describe_device(device) + f", torch {torch.__version__}"


def _probe_mirror(url: str) -> None:
    request = urllib.request.Request(url.rstrip("/") + "/", method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=MIRROR_PROBE_S).close()
    except urllib.error.HTTPError:
        return  # it answered; a missing file is the data layer's error to report
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChapterError(
            f"DLNOTES_MIRROR={url} did not answer within {MIRROR_PROBE_S} s ({reason}); "
            "point it at a reachable mirror or a local copy, or unset it"
        ) from None


def _writable_folder(folder: Path, what: str) -> None:
    if (why := why_unwritable(folder)) is not None:
        raise ChapterError(f"{what} {folder} is not writable ({why})")


def resolved_environment(cwd: Path | None = None) -> dict[str, str]:
    """Return DLNOTES_MIRROR and DLNOTES_CACHE made absolute against ``cwd`` (the caller's
    directory), checked: a mirror folder that exists or a URL that answers, a cache that can be
    written. The kernel runs in notebooks/, so a relative path must not reach it as it is."""
    cwd = Path(cwd or Path.cwd())
    env = {}
    for name in PATH_VARIABLES:
        value = os.environ.get(name)
        if not value:
            continue
        if "://" in value:
            if name == "DLNOTES_CACHE":
                raise ChapterError(f"DLNOTES_CACHE={value} must be a folder, not a URL")
            if value.startswith(("http://", "https://")):
                _probe_mirror(value)
            env[name] = value
            continue
        path = (cwd / Path(value).expanduser()).resolve()
        if name == "DLNOTES_MIRROR" and not path.is_dir():
            raise ChapterError(
                f"DLNOTES_MIRROR={value} is not a folder (resolved against {cwd} to {path}); "
                "point it at the dataset mirror, e.g. the repository's ../shared/data"
            )
        if name == "DLNOTES_CACHE":
            if path.exists() and not path.is_dir():
                raise ChapterError(f"DLNOTES_CACHE={value} is a file, not a folder ({path})")
            _writable_folder(path, "the cache DLNOTES_CACHE")
        env[name] = str(path)
    if "DLNOTES_CACHE" not in env:
        _writable_folder(Path.home() / ".cache" / "dlnotes", "the default cache")
    return env


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _lock(path: Path, chapter: str) -> Iterator[None]:
    """Hold the chapter's run lock: one run of a chapter at a time writes its files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ChapterError(
                    f"{chapter} is already being run by another process (lock {path}); wait for "
                    "it to finish, or stop it"
                ) from None
            raise
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_output(output: Path, chapter: Chapter) -> None:
    if output.suffix != ".ipynb":
        raise ChapterError(f"--output {output} must end in .ipynb (the report is a notebook)")
    if output.resolve() in (chapter.ipynb.resolve(), chapter.py.resolve()):
        raise ChapterError(f"--output {output} is the chapter's own source; choose another path")
    if output.is_dir():
        raise ChapterError(f"--output {output} is a folder; give a file name ending in .ipynb")
    _writable_folder(output.parent, "the output folder")


def _check_timeout(cell_timeout: float | None) -> None:
    if cell_timeout is not None and not (math.isfinite(cell_timeout) and cell_timeout > 0):
        raise ParameterError(
            f"--cell-timeout must be a positive number of seconds, got {cell_timeout!r} "
            "(leave it out for no limit)"
        )


def preflight(
    chapter: Chapter,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    output: Path | None = None,
    cell_timeout: float | None = None,
    dry_run: int | None = None,
    max_epochs: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any], Path, dict[str, str], str]:
    """Check a run's inputs before anything starts; raise ParameterError or ChapterError.

    Return the parameters to inject, the caller's overrides, the report path, the environment
    (paths made absolute) and the device's description.
    """
    name, spec = chapter.name, chapter.params
    wanted = dict(overrides or {})
    for key, value in (("PROFILE", profile), ("DEVICE", device)):
        if value is not None and key in wanted and str(wanted[key]) != str(value):
            raise ParameterError(
                f"--{key.lower()} {value} contradicts -p {key} {wanted[key]}; give one of them"
            )
        if value is not None:
            wanted[key] = value
    _check_timeout(cell_timeout)
    params = validate(name, spec, wanted)
    if dry_run is not None and dry_run < 1:
        raise ParameterError(f"--steps must be at least 1, got {dry_run}")
    if max_epochs is not None and not dry_run:
        raise ParameterError("--max-epochs is for a dry run; add --dry-run or --estimate")
    if max_epochs is not None and max_epochs < 1:
        raise ParameterError(f"--max-epochs must be at least 1, got {max_epochs}")
    default = chapter.root / "build" / "dry" / chapter.report.name if dry_run else chapter.report
    output = Path(output).resolve() if output else default
    _check_output(output, chapter)
    if dry_run and output == chapter.report.resolve():
        raise ChapterError(
            f"--output {output} is the chapter's report; a dry run's numbers are placeholders "
            "and never replace it (leave --output out: build/dry/ is the default)"
        )
    env = resolved_environment()
    device_type, device_text = _resolve_device(params.get("DEVICE", spec.params["DEVICE"].default))
    params["DEVICE"] = device_type
    # Inject the profile too, so the report's first cells say how it ran.
    params.setdefault(
        "PROFILE", spec.params["PROFILE"].default if "PROFILE" in spec.params else None
    )
    params = {k: v for k, v in params.items() if v is not None or k in wanted}
    return params, wanted, output, env, device_text


def run_chapter(
    root: Path,
    chapter: str | Chapter,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    output: Path | None = None,
    progress: bool = True,
    cell_timeout: float | None = None,
    dry_run: int | None = None,
    max_epochs: int | None = None,
) -> RunResult:
    """Execute ``chapter`` with papermill and write its report, provenance and metrics.

    Everything the input alone shows to be wrong is refused before a kernel starts: parameters
    (names, types, ranges), a ``profile`` or ``device`` contradicting ``overrides``, an output
    that cannot be written, a timeout that is not positive, a mirror or cache that is unusable.
    The source is read and fingerprinted once, and that same text is what runs. The report and
    metrics are replaced only after a successful run. ``cell_timeout`` (seconds) fails the run
    when one cell runs longer. ``dry_run`` (a number of batches) runs the chapter at the
    profile's shapes with every pass shortened to that many batches (:mod:`dlnotes.runner.dry`):
    its report goes to ``build/dry/``, its numbers are placeholders, and the result carries an
    estimate of the real run's time. ``max_epochs`` also caps, in a dry run, every epoch count
    the chapter takes from its profile (the estimate is then for the capped counts).
    """
    import nbformat
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .. import __version__
    from ..data.store import DataError

    chapter = chapter if isinstance(chapter, Chapter) else Chapter(root, chapter)
    name, spec = chapter.name, chapter.params
    params, wanted, output, env, device_text = preflight(
        chapter, profile=profile, overrides=overrides, device=device, output=output,
        cell_timeout=cell_timeout, dry_run=dry_run, max_epochs=max_epochs,
    )  # fmt: skip

    from ..env import machine_record

    # What decides the per-device choices (bf16 autocast, the kernels' instruction set), taken in
    # this process on the machine the kernel runs on.
    machine = machine_record(params["DEVICE"])
    fingerprint = chapter.fingerprint  # taken before execution, from the text that will run
    partial = chapter.root / "build" / "runs" / f"{name}.ipynb"
    if dry_run:  # its own files and lock: a dry run writes nothing a real run reads
        partial = chapter.root / "build" / "dry" / f"{name}.run.ipynb"
    scratch = contextlib.ExitStack()
    with _lock(partial.with_name(f"{name}.lock"), name), _environment(env), scratch:
        source = chapter.notebook()
        if dry_run:
            import nbformat.v4

            work = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="dlnotes-dry-")))
            log = work / "passes.jsonl"
            setup = dry.setup_source(dry_run, log, work / "checkpoints", max_epochs)
            source.cells.insert(0, nbformat.v4.new_code_cell(setup))
        chapter.sync_pair()
        started, t0 = datetime.now(timezone.utc), time.perf_counter()
        unchanged = (
            f"the previous report {output} is unchanged"
            if output.exists()
            else f"no report was written to {output}"
        )
        # The datasets, fetched and unpacked under a lock per dataset before the kernel starts,
        # so that two runs on a cold cache never unpack or derive the same files at once.
        try:
            prepare_datasets(chapter_datasets(chapter.source, spec.resolved(params)))
        except DataError as exc:
            raise ChapterError(f"{name}: nothing was run, {unchanged}: {exc}") from None
        try:
            papermill.execute_notebook(
                source,
                str(partial),
                parameters=params,
                kernel_name="python3",
                progress_bar=progress,
                cwd=str(chapter.root / "notebooks"),
                execution_timeout=cell_timeout,
            )
        except CellTimeoutError:
            raise ChapterError(
                f"{name}: a cell ran longer than {cell_timeout:g} s (--cell-timeout) and was "
                f"stopped; the partly executed notebook is {partial}; {unchanged}."
            ) from None
        except papermill.PapermillExecutionError as exc:
            raise ChapterError(
                f"{name} failed in code cell {exc.exec_count} (cell index {exc.cell_index}): "
                f"{exc.ename}: {exc.evalue}\nThe partly executed notebook is {partial}; "
                f"{unchanged}."
            ) from None
        except DeadKernelError:
            raise ChapterError(
                f"{name}: the kernel died during the run (killed, or out of memory); the partly "
                f"executed notebook is {partial}; {unchanged}."
            ) from None
        except NoSuchKernel:
            raise ChapterError(
                f"{name}: no 'python3' Jupyter kernel is installed in this environment; "
                "install ipykernel (the README's set-up does); nothing was run"
            ) from None
        seconds = time.perf_counter() - t0

        notebook = nbformat.read(partial, as_version=4)
        resolved = spec.resolved(params)
        forecast = None
        if dry_run:
            import nbformat.v4

            forecast = dry.estimate(notebook, log)
            if log.exists():  # kept beside the report: what the estimate was made from
                write_atomic(output.with_suffix(".passes.jsonl"), log.read_bytes())
            notebook.cells[0] = nbformat.v4.new_markdown_cell(
                dry.banner(dry_run, resolved.get("PROFILE"), max_epochs)
            )
        notebook.metadata["dlnotes"] = {
            "chapter": name,
            "profile": resolved.get("PROFILE"),
            "parameters": resolved,
            "overrides": {k: params[k] for k in wanted},  # what the caller asked for
            "device": device_text,
            "machine": machine,
            "dlnotes": __version__,
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
            "started": started.isoformat(timespec="seconds"),
            "duration_s": round(seconds, 1),
            "source_hash": fingerprint.hash,
            "source_parts": fingerprint.to_json(),
        }
        metrics = metrics_from_notebook(notebook)
        written: dict[str, Any] = metrics
        if dry_run:
            notebook.metadata["dlnotes"]["dry_run"] = {"steps": dry_run, "max_epochs": max_epochs,
                                                       "estimate": forecast}  # fmt: skip
            written = {"placeholders": True, "dry_run_steps": dry_run, "metrics": metrics,
                       "dry_run_max_epochs": max_epochs, "estimate": forecast}  # fmt: skip
        try:
            write_atomic(output, nbformat.writes(notebook))
            write_atomic(
                Chapter.metrics_for(output), json.dumps(written, indent=1, sort_keys=True) + "\n"
            )
        except OSError as exc:
            raise ChapterError(
                f"{name}: the run finished but its report could not be written to {output} "
                f"({exc.strerror or exc}); the executed notebook is {partial}"
            ) from None
    return RunResult(name, output, metrics, seconds, forecast)


def describe_chapters(root: Path) -> str:
    """Return a listing of every chapter with its parameters, for ``dlnotes run --list``."""
    lines = []
    for name in list_chapters(root):
        spec = Chapter(root, name).params
        lines.append(f"{name}  (profiles: {', '.join(spec.profiles) or 'none'})")
        lines += [f"    {p.describe()}" for p in spec.params.values()]
    return "\n".join(lines)
