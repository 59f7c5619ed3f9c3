"""Chapter parameters inside a notebook: profiles and their resolution (kernel side).

A chapter's first code cell (tagged ``parameters``) holds literal UPPER_SNAKE assignments, one
comment each; ``None`` means "take the profile's value". A later cell declares ``PROFILES`` as a
literal dict and resolves the knobs with :func:`from_profile`. The runner parses both from the
source (``dlnotes.spec``) and refuses bad values before anything executes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEVICES", "ParameterError", "check_injected", "from_profile"]

DEVICES = ("auto", "cpu", "cuda", "mps")


class ParameterError(ValueError):
    """A parameter name or value the chapter does not accept."""


def from_profile(profiles: dict[str, dict[str, Any]], profile: str, **explicit: Any) -> tuple:
    """Return the values of ``explicit``'s names, in order: the explicit value, or the profile's when None.

    >>> from_profile({"quick": {"EPOCHS": 5}}, "quick", EPOCHS=None, LR=0.1)
    (5, 0.1)
    """
    if profile not in profiles:
        raise ParameterError(f"unknown PROFILE {profile!r}; choose one of {', '.join(profiles)}")
    chosen = profiles[profile]
    values = []
    for name, value in explicit.items():
        if value is None:
            if name not in chosen:
                raise ParameterError(f"{name} is None and profile {profile!r} gives it no value")
            value = chosen[name]
        values.append(value)
    return tuple(values)


_INJECTED = "# Parameters"  # the first line of the cell papermill injects after the parameters cell


def check_injected(history: list[str]) -> None:
    """Refuse, under plain papermill, a parameter the chapter does not declare or a value
    outside its declared range, with the same message the runner gives before a kernel starts.

    ``history`` is IPython's ``In`` (the cells run so far, the current one last, which declares
    ``PROFILES``). Papermill's injected cell starts with ``# Parameters`` and follows the
    parameters cell. Without one (a run in Jupyter) there is nothing to check.
    """
    import ast

    from .spec import parse_source, validate

    cells = [c for c in history if c and c.strip()]
    found = [i for i, c in enumerate(cells) if c.lstrip().startswith(_INJECTED)]
    if not found or found[-1] == 0:
        return
    injected, declared = cells[found[-1]], cells[found[-1] - 1]
    spec = parse_source(declared, [cells[-1]])
    values = {}
    for node in ast.parse(injected).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            values[node.targets[0].id] = ast.literal_eval(node.value)
    validate("", spec, values)
