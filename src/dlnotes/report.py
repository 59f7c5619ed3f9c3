"""What a chapter hands to the book: glued numbers, quotable in prose and collected by the runner
into the metrics JSON."""

from __future__ import annotations

import numbers

__all__ = ["publish", "lab_report_rows", "lab_report_table"]

LAB_REPORT_NUMBERS = "book/lab_report_numbers.yml"


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


def lab_report_rows(chapter: str, start=None) -> list[dict]:
    """Return the rows of ``book/lab_report_numbers.yml`` for ``chapter`` (the one copy of the lab
    reports' numbers), found from the working directory or a folder above it."""
    from pathlib import Path

    import yaml

    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        path = folder / LAB_REPORT_NUMBERS
        if path.is_file():
            rows = yaml.safe_load(path.read_text(encoding="utf-8"))
            return [row for row in rows if row["chapter"] == chapter]
    raise FileNotFoundError(
        f"{LAB_REPORT_NUMBERS} is not in {here} or a folder above it: run the chapter from the "
        "dlnotes repository (`dlnotes run`, or papermill from the repository's root)"
    )


def lab_report_table(chapter: str, metrics: dict, start=None):
    """Return the chapter's lab-report numbers beside this run's, as a DataFrame of text.

    ``metrics`` holds what the chapter published; a row whose metric it lacks says so rather
    than leaving a gap. Counts with an ``of`` read "9 of 12".
    """
    import pandas as pd

    def shown(value, row):
        if value is None:
            return "—"
        if isinstance(value, str):
            return value
        text = format(value, row.get("format", ""))
        of = metrics.get(row["of"]) if row.get("of") else None
        return f"{text} of {of:d}" if of is not None else text

    table = {}
    for row in lab_report_rows(chapter, start):
        ours = metrics.get(row["ours"])
        table[row["label"]["en"]] = {
            "lab report": shown(row["lab_report"], row),
            "this run": shown(ours, row) if ours is not None else f"({row['ours']} not run)",
        }
    frame = pd.DataFrame.from_dict(table, orient="index", columns=["lab report", "this run"])
    return frame.rename_axis("experiment")
