"""What a chapter hands to the book: glued numbers, quotable in prose and collected by the runner
into the metrics JSON."""

from __future__ import annotations

import numbers

__all__ = ["publish"]


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
