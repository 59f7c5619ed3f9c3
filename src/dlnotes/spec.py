"""A chapter's parameters as declared in its source: names, types, ranges, choices, profiles.

The parameters cell holds literal ``NAME = value  # comment`` lines; ``None`` means "take the
profile's value". The comment says what the value is and declares what it may be:

- a number ends its comment with an interval: ``[1, 100000]``, ``(0, 1]``, ``[0, inf)``;
- a string lists its choices as ``a: what a does | b: what b does`` (the first word of each
  alternative), or takes free text when it lists none (the chapter checks it);
- a boolean is ``True`` or ``False``.

A later cell declares ``PROFILES`` as a literal dict. Everything here is parsed from the source,
never executed, so the runner refuses bad values before a kernel starts, and a chapter run by
plain papermill refuses them in its first cells (:func:`dlnotes.params.check_injected`).
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .params import DEVICES, ParameterError

__all__ = [
    "Param",
    "ChapterParams",
    "parse_source",
    "parse_parameters",
    "read_parameters",
    "coerce",
    "validate",
]

_INTERVAL = re.compile(
    r"(?P<open>[\[(])\s*(?P<lo>-?inf|[-+0-9.eE_]+)\s*,\s*(?P<hi>-?inf|[-+0-9.eE_]+)\s*(?P<close>[\])])\s*$"
)


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


@dataclass(frozen=True)
class Param:
    """One entry of a parameters cell."""

    name: str
    default: Any
    kind: type | None  # the accepted type; None when neither default nor profiles say
    help: str
    bounds: tuple[float, float, bool, bool] | None = None  # lo, hi, lo included, hi included
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        kind = self.kind.__name__ if self.kind else "any"
        return f"{self.name} ({kind}, default {self.default!r}): {self.help}"

    def allowed(self) -> str:
        """Return what the parameter accepts, in words ('an integer in [1, inf)')."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.bounds:
            lo, hi, lo_in, hi_in = self.bounds
            word = _TYPE_WORDS.get(self.kind, "a value")
            return f"{word} in {'[' if lo_in else '('}{_num(lo)}, {_num(hi)}{']' if hi_in else ')'}"
        return _TYPE_WORDS.get(self.kind, "any value")

    def check(self, value: Any, *, origin: str = "") -> None:
        """Raise ParameterError when ``value`` is outside the declared range or choices."""
        if value is None:
            return
        where = f" ({origin})" if origin else ""
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(
                f"parameter {self.name} must be a finite number, got {value!r}{where}"
            )
        if self.bounds and isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi, lo_in, hi_in = self.bounds
            below = value < lo or (value == lo and not lo_in)
            above = value > hi or (value == hi and not hi_in)
            if below or above:
                raise ParameterError(
                    f"parameter {self.name} must be {self.allowed()}, got {value!r}{where}"
                )
        if self.choices and value not in self.choices:
            close = difflib.get_close_matches(str(value), self.choices, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"parameter {self.name} must be {self.allowed()}, got {value!r}{where}.{hint}"
            )
        if self.kind is str and not self.choices and not str(value).strip():
            raise ParameterError(f"parameter {self.name} must not be empty{where}")


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


def _bounds(comment: str) -> tuple[float, float, bool, bool] | None:
    found = _INTERVAL.search(comment)
    if not found:
        return None
    try:
        lo, hi = float(found["lo"]), float(found["hi"])
    except ValueError:
        return None
    return lo, hi, found["open"] == "[", found["close"] == "]"


def _choices(comment: str) -> tuple[str, ...] | None:
    if " | " not in comment:
        return None
    words = [alt.strip().split()[0].rstrip(":;,") for alt in comment.split(" | ") if alt.strip()]
    return tuple(words) if len(words) > 1 else None


def parse_parameters(notebook) -> ChapterParams:
    """Parse the parameters cell and the PROFILES dict of a notebook read by jupytext."""
    return parse_source(*_parameters_cell(notebook))


def parse_source(source: str, later: list[str]) -> ChapterParams:
    """Parse a parameters cell's ``source`` and the PROFILES dict found in the ``later`` cells."""
    profiles: dict[str, dict[str, Any]] = {}
    for src in later:
        try:
            body = ast.parse(src).body
        except SyntaxError:
            continue
        for node in body:
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
            if kind is int and float in kinds:
                kind = float
        elif kinds == {int, float}:
            kind = float
        else:
            kind = kinds.pop() if len(kinds) == 1 else None
        choices = None
        if name == "PROFILE" and profiles:
            choices = tuple(profiles)
        elif name == "DEVICE":
            choices = DEVICES
        elif kind is str:
            choices = _choices(comment)
        bounds = _bounds(comment) if kind in (int, float) else None
        params[name] = Param(name, default, kind, comment, bounds, choices)
    return ChapterParams(params, profiles)


def read_parameters(path: str | Path) -> ChapterParams:
    """Parse the parameters cell and the PROFILES dict of a chapter file (.py or .ipynb)."""
    import jupytext  # imported here: parsing is the only user of jupytext in this module

    return parse_parameters(jupytext.read(Path(path)))


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
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = raw
        if param.kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if param.kind is list and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
    if value is None and param.default is not None:
        raise ParameterError(
            f"parameter {param.name} cannot be None: it has no profile value to fall back on"
        )
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
    value = float(value) if kind is float and value is not None else value
    param.check(value)
    return value


def validate(chapter: str, spec: ChapterParams, overrides: dict[str, Any]) -> dict[str, Any]:
    """Return ``overrides`` checked and coerced against ``spec``; raise ParameterError naming the fix.

    Values taken from the chosen profile are checked against the declared ranges too, so a
    profile that contradicts its own parameters cell fails here rather than in a cell.
    """
    where = f"chapter {chapter}" if chapter else "this chapter"
    checked = {}
    for name, raw in overrides.items():
        if name not in spec.params:
            close = difflib.get_close_matches(name.upper(), spec.params, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            listing = "\n  ".join(p.describe() for p in spec.params.values())
            raise ParameterError(
                f"unknown parameter {name!r} for {where}.{hint}\nIts parameters are:\n  {listing}"
            )
        checked[name] = coerce(spec.params[name], raw)
    profile = checked.get("PROFILE", spec.params.get("PROFILE", Param("", None, None, "")).default)
    if spec.profiles and profile not in spec.profiles:
        raise ParameterError(
            f"unknown PROFILE {profile!r} for {where}; choose one of {', '.join(spec.profiles)}"
        )
    if checked.get("DEVICE", "auto") not in DEVICES:
        raise ParameterError(
            f"unknown DEVICE {checked['DEVICE']!r}; choose one of {', '.join(DEVICES)}"
        )
    for name, value in spec.resolved(checked).items():
        if name not in checked:
            spec.params[name].check(value, origin=f"profile {profile!r}")
    return checked
