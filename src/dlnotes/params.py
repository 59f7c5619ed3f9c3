"""Chapter parameters: profiles inside a notebook, and parsing/validation for the runner.

A chapter's first code cell (tagged ``parameters``) holds literal UPPER_SNAKE assignments, one
comment each; ``None`` means "take the profile's value". A later cell declares ``PROFILES`` as a
literal dict and resolves the knobs with :func:`from_profile`. The runner reads both with
:func:`read_parameters` and refuses unknown names and wrong types before anything executes.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "from_profile",
    "Param",
    "ChapterParams",
    "read_parameters",
    "coerce",
    "validate",
    "ParameterError",
]

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


@dataclass(frozen=True)
class Param:
    """One entry of a parameters cell."""

    name: str
    default: Any
    kind: type | None  # the accepted type; None when neither default nor profiles say
    help: str

    def describe(self) -> str:
        kind = self.kind.__name__ if self.kind else "any"
        return f"{self.name} ({kind}, default {self.default!r}): {self.help}"


@dataclass(frozen=True)
class ChapterParams:
    """The parameters and profiles a chapter declares."""

    params: dict[str, Param]
    profiles: dict[str, dict[str, Any]]

    def resolved(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Return every parameter's effective value under ``overrides`` (profile applied)."""
        values = {name: p.default for name, p in self.params.items()} | overrides
        profile = self.profiles.get(values.get("PROFILE"), {})
        return {k: (profile.get(k) if v is None and k in profile else v) for k, v in values.items()}


def _parameters_cell(notebook) -> tuple[str, list[str]]:
    code = [c for c in notebook.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        if "parameters" in cell.metadata.get("tags", []):
            return cell.source, [c.source for c in code[i + 1 :]]
    raise ParameterError("the notebook has no code cell tagged 'parameters'")


def read_parameters(path: str | Path) -> ChapterParams:
    """Parse the parameters cell and the PROFILES dict of a chapter (.py or .ipynb)."""
    import jupytext  # imported here: parsing is the only user of jupytext in this module

    notebook = jupytext.read(Path(path))
    source, later = _parameters_cell(notebook)
    profiles: dict[str, dict[str, Any]] = {}
    for src in later:
        for node in ast.parse(src).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
                "PROFILES"
            ]:
                profiles = ast.literal_eval(node.value)
    lines = source.splitlines()
    params = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            raise ParameterError(
                f"parameters cell line {node.lineno}: only NAME = literal is allowed"
            )
        name = node.targets[0].id
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(f"parameter {name}: the default must be a literal") from None
        comment = lines[node.lineno - 1].partition("#")[2].strip()
        kinds = {type(p[name]) for p in profiles.values() if name in p}
        if default is not None:
            kind = type(default)
        elif kinds == {int, float}:
            kind = float
        else:
            kind = kinds.pop() if len(kinds) == 1 else None
        params[name] = Param(name, default, kind, comment)
    return ChapterParams(params, profiles)


_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
}


def coerce(param: Param, raw: Any) -> Any:
    """Return ``raw`` (a CLI string or a Python value) as ``param``'s type, or raise ParameterError."""
    value = raw
    if isinstance(raw, str) and param.kind is not str:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        if param.kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if param.kind is list and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
    kind = param.kind
    ok = (
        kind is None
        or value is None
        or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (kind not in (int, float) and isinstance(value, kind))
    )
    if not ok:
        raise ParameterError(
            f"parameter {param.name} expects {_TYPE_WORDS.get(kind, kind.__name__)}, got {raw!r}"
        )
    return float(value) if kind is float and value is not None else value


def validate(chapter: str, spec: ChapterParams, overrides: dict[str, Any]) -> dict[str, Any]:
    """Return ``overrides`` checked and coerced against ``spec``; raise ParameterError naming the fix."""
    checked = {}
    for name, raw in overrides.items():
        if name not in spec.params:
            close = difflib.get_close_matches(name.upper(), spec.params, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            listing = "\n  ".join(p.describe() for p in spec.params.values())
            raise ParameterError(
                f"unknown parameter {name!r} for chapter {chapter}.{hint}\n"
                f"Its parameters are:\n  {listing}"
            )
        checked[name] = coerce(spec.params[name], raw)
    profile = checked.get("PROFILE", spec.params.get("PROFILE", Param("", None, None, "")).default)
    if spec.profiles and profile not in spec.profiles:
        raise ParameterError(
            f"unknown PROFILE {profile!r} for chapter {chapter}; choose one of "
            f"{', '.join(spec.profiles)}"
        )
    if checked.get("DEVICE", "auto") not in DEVICES:
        raise ParameterError(
            f"unknown DEVICE {checked['DEVICE']!r}; choose one of {', '.join(DEVICES)}"
        )
    return checked
