"""A chapter as the runner sees it: its files, its source read once, its parameters, its
fingerprint, and whether its committed report is current."""

from __future__ import annotations

import ast
import math
import numbers
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from ..files import write_atomic
from ..spec import ChapterParams, parse_parameters
from .fingerprint import Fingerprint, fingerprint

__all__ = [
    "Chapter",
    "ChapterError",
    "find_root",
    "list_chapters",
    "metrics_from_notebook",
    "pair_in_sync",
]

CHAPTER_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class ChapterError(RuntimeError):
    """A chapter that cannot be found, synced or executed; the message says what to do."""


def find_root(start: str | Path | None = None) -> Path:
    """Return the project root: ``$DLNOTES_ROOT``, or the first parent holding notebooks/ and book/."""
    if os.environ.get("DLNOTES_ROOT"):
        root = Path(os.environ["DLNOTES_ROOT"]).resolve()
        if not (root / "notebooks").is_dir():
            raise ChapterError(f"DLNOTES_ROOT={root} has no notebooks/ folder: unset it or fix it")
        return root
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


_NOT_FINITE = {"nan", "inf", "-inf"}


def metrics_from_notebook(notebook) -> dict[str, float | None]:
    """Return the glued numbers of an executed notebook as a flat name → number dict.

    A number that is not finite (a loss that overflowed) maps to None, so the metrics JSON still
    lists every number the chapter published.
    """
    metrics: dict[str, float] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook")
            if not scrap:
                continue
            text = output.get("data", {}).get(scrap.get("mime_prefix", "") + "text/plain")
            if text in _NOT_FINITE:  # repr() of a float that is not a number: no literal for it
                metrics[scrap["name"]] = None  # JSON has no NaN; null says "published, not finite"
                continue
            try:
                value = ast.literal_eval(text) if text is not None else None
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                metrics[scrap["name"]] = value if math.isfinite(value) else None
    return metrics


def _is_injected(cell) -> bool:
    return "injected-parameters" in cell.metadata.get("tags", [])


class Chapter:
    """One chapter of a project: ``Chapter(root, "07")`` finds ``07_activations``.

    The source is read once (``source``); everything else (parameters, fingerprint) is derived
    from that one reading, so a run executes, hashes and records the same text even when the
    file is edited while it runs.
    """

    def __init__(self, root: Path, name: str):
        self.root = Path(root)
        chapters = list_chapters(self.root)
        stem = Path(name).stem
        matches = [c for c in chapters if stem in (c, c[:2], c[3:])]
        if len(matches) != 1:
            raise ChapterError(
                f"unknown chapter {name!r}; the chapters are: {', '.join(chapters) or '(none)'}"
            )
        self.name = matches[0]

    def __repr__(self) -> str:
        return f"Chapter({self.name!r})"

    # --- files ---
    @property
    def py(self) -> Path:
        return self.root / "notebooks" / f"{self.name}.py"

    @property
    def ipynb(self) -> Path:
        return self.py.with_suffix(".ipynb")

    @property
    def report(self) -> Path:
        """Where the executed report lives in the book."""
        return self.root / "book" / "chapters" / f"{self.name}.ipynb"

    @staticmethod
    def metrics_for(report: Path) -> Path:
        """Return the metrics JSON path that belongs beside ``report``."""
        return report.with_name(report.stem + ".metrics.json")

    @property
    def metrics(self) -> Path:
        return self.metrics_for(self.report)

    # --- the source, read once ---
    @cached_property
    def source(self):
        """The chapter's notebook as jupytext reads the .py (read on first use, then kept)."""
        import jupytext

        return jupytext.read(self.py)

    @cached_property
    def params(self) -> ChapterParams:
        return parse_parameters(self.source)

    @cached_property
    def fingerprint(self) -> Fingerprint:
        return fingerprint(self.source)

    def notebook(self):
        """Return the output-free .ipynb form of the source, as executed and as committed."""
        import jupytext

        notebook = jupytext.reads(jupytext.writes(self.source, fmt="ipynb"), fmt="ipynb")
        # Plain `papermill` needs a kernel name, and Jupyter needs the pairing to save both files.
        notebook.metadata.setdefault("kernelspec", dict(KERNELSPEC))
        notebook.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        return notebook

    def sync_pair(self) -> bool:
        """Write the output-free .ipynb twin if it differs; return True when it was written.

        The .py is the source of truth. An .ipynb edited after the .py (in a Jupyter without
        Jupytext) is not overwritten silently: that is an error that says how to carry its edits
        over.
        """
        import jupytext

        if pair_in_sync(self.py, self.ipynb):
            return False
        if self.ipynb.exists() and self.ipynb.stat().st_mtime > self.py.stat().st_mtime + 1:
            raise ChapterError(
                f"{self.ipynb} differs from {self.py.name} and is newer: carry its edits into the "
                f"source with `jupytext --sync {self.ipynb}` (or delete it to regenerate it from "
                f"{self.py.name})"
            )
        write_atomic(self.ipynb, jupytext.writes(self.notebook(), fmt="ipynb"))
        return True

    # --- the committed report ---
    def _read_report(self):
        """Return the report notebook (None if absent), read once while the file is unchanged:
        `dlnotes book` asks a chapter for its staleness, settings and text, and a report can be
        several megabytes."""
        import nbformat

        if not self.report.exists():
            return None
        stat = self.report.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        if getattr(self, "_report_cache", (None, None))[0] != key:
            self._report_cache = (key, nbformat.read(self.report, as_version=4))
        return self._report_cache[1]

    @property
    def recorded(self) -> dict[str, Any]:
        """The provenance the report records ({} when there is no report)."""
        report = self._read_report()
        return report.metadata.get("dlnotes", {}) if report is not None else {}

    def staleness(self) -> list[str]:
        """Return why the report must be re-executed (empty when it is current)."""
        recorded = self.recorded
        if not recorded:
            return ["no report yet"] if not self.report.exists() else ["report has no provenance"]
        if recorded.get("source_hash") == self.fingerprint.hash:
            return []
        parts = recorded.get("source_parts")
        if not parts:
            return ["report made before fingerprints recorded their parts"]
        return self.fingerprint.changes_since(Fingerprint.from_json(parts)) or [
            "fingerprint differs"
        ]

    def recorded_settings(self) -> tuple[str | None, dict[str, Any]]:
        """Return the profile and parameter overrides the report was made with.

        ``(None, {})`` when there is no report. The device is left out (a rerun picks its own),
        and so is any parameter the chapter no longer has.
        """
        recorded = self.recorded
        overrides = {
            k: v
            for k, v in recorded.get("overrides", {}).items()
            if k in self.params.params and k not in ("PROFILE", "DEVICE")
        }
        return recorded.get("profile"), overrides

    def refresh(self) -> bool:
        """Copy the source's text into a current report (prose, and code whose comments or layout
        alone changed); return True when the report was written.

        Only valid while :meth:`staleness` is empty: the cells are then the same code, matched
        by position, so the outputs still belong to them.
        """
        import nbformat

        if self.staleness():
            raise ChapterError(f"{self.name}: the report is stale; re-run it instead of refreshing")
        report = self._read_report()
        executed = [c for c in report.cells if not _is_injected(c)]
        if [(c.cell_type, c.source) for c in executed] == [
            (c.cell_type, c.source) for c in self.source.cells
        ]:
            return False
        code = iter(c for c in executed if c.cell_type == "code")
        injected = [c for c in report.cells if _is_injected(c)]
        cells = []
        for cell in self.source.cells:
            if cell.cell_type == "code":
                old = next(code)
                old.source = cell.source
                cells.append(old)
            else:
                cells.append(cell)
            if "parameters" in cell.metadata.get("tags", []):
                cells.extend(injected)
        report.cells = cells
        try:
            write_atomic(self.report, nbformat.writes(report))
        finally:  # the cached copy was edited in place: read the file afresh next time
            self._report_cache = (None, None)
        return True
