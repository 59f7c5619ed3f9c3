"""Chapter parameters inside a notebook: profiles and their resolution (kernel side).

A chapter's first code cell (tagged ``parameters``) holds literal UPPER_SNAKE assignments, one
comment each; ``None`` means "take the profile's value". A later cell declares ``PROFILES`` as a
literal dict and resolves the knobs with :func:`from_profile`. The runner parses both from the
source (``dlnotes.runner.spec``) and refuses bad values before anything executes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEVICES", "ParameterError", "from_profile"]

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
