"""What a chapter hands to the book: glued numbers (prose and metrics JSON) and provenance."""

from __future__ import annotations

import ast
import hashlib
import math
import numbers

__all__ = ["publish", "metrics_from_notebook", "code_hash"]

GLUE_PREFIX = "application/papermill.record/"  # myst_nb's prefix for glue outputs not displayed


def publish(**metrics: float) -> dict[str, float]:
    """Glue each number under its name (for ``{glue:text}`` in prose) and return them as floats.

    The runner collects every glued number of an executed chapter into its metrics JSON, so a
    number published here is both quotable in the text and listed in the book's overview.
    """
    from myst_nb import glue  # imported here: only an executing notebook needs it

    clean = {}
    for name, value in metrics.items():
        if not isinstance(value, numbers.Real):
            raise TypeError(f"publish() takes numbers; {name} is {type(value).__name__}")
        # Plain Python numbers: NumPy's repr ('np.float64(…)') would not round-trip.
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
        glue(name, value, display=False)
        clean[name] = value
    return clean


def metrics_from_notebook(notebook) -> dict[str, float]:
    """Return the glued numbers of an executed notebook as a flat name → number dict."""
    metrics: dict[str, float] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook")
            if not scrap:
                continue
            text = output.get("data", {}).get(scrap.get("mime_prefix", "") + "text/plain")
            try:
                value = ast.literal_eval(text) if text is not None else None
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                metrics[scrap["name"]] = value if math.isfinite(value) else None
    return metrics


def code_hash(notebook) -> str:
    """Return the sha256 of a notebook's code cells (sources joined), ignoring injected cells."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", []):
            digest.update(cell.source.strip().encode() + b"\n\x00")
    return digest.hexdigest()
