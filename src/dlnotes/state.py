"""Training state in one place: checkpoint files keyed by the configuration and the code,
one atomic save and one load for every loop, and best weights with one patience rule.

A loop that is itself the lesson (numpy backpropagation, a GAN, a CycleGAN) stays written out in
its chapter and saves through :func:`save_state` / :func:`load_state`; everything else trains
with ``dlnotes.train.fit``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import atomic_path

__all__ = ["code_digest", "checkpoint_file", "save_state", "load_state", "BestWeights"]

_OURS = ("__main__", "dlnotes")  # code whose source keys a checkpoint: the notebook's and ours
_PLAIN = (bool, int, float, str, type(None))


def _names(code: types.CodeType) -> set[str]:
    """Return the global names a code object (and the functions nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # no source kept (exec'd code): the compiled code stands in
        code = fn.__code__
        return repr((code.co_code, code.co_consts, code.co_names))


def code_digest(*objects) -> str:
    """Return a digest of the source of ``objects`` and of everything of ours they reach.

    Functions and classes defined in the notebook (``__main__``) or in ``dlnotes`` count: their
    source, the notebook globals they refer to (followed the same way; plain constants by value),
    a class's methods and bases. Library code (torch, numpy) does not: its version is in the
    report's provenance. So a changed model or training function, with the same configuration,
    gets a new checkpoint instead of old weights.
    """
    parts: list[str] = []
    seen: set[int] = set()

    def visit(obj, name: str = "") -> None:
        if isinstance(obj, functools.partial):
            visit(obj.func)
            parts.append(repr((obj.args, sorted(obj.keywords.items()))))
            return
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, property):
            for accessor in (obj.fget, obj.fset):
                if accessor is not None:
                    visit(accessor)
            return
        if isinstance(obj, _PLAIN) or (
            isinstance(obj, tuple) and all(isinstance(v, _PLAIN) for v in obj)
        ):
            if name:
                parts.append(f"{name}={obj!r}")
            return
        if id(obj) in seen or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            return
        if not str(getattr(obj, "__module__", "")).startswith(_OURS):
            return
        seen.add(id(obj))
        if inspect.isclass(obj):
            bases = ", ".join(b.__qualname__ for b in obj.__bases__)
            parts.append(f"class {obj.__qualname__}({bases})")
            for base in obj.__bases__:
                visit(base)
            for key, member in sorted(vars(obj).items()):
                if not key.startswith("__") or key in ("__init__", "__call__"):
                    visit(member, f"{obj.__qualname__}.{key}")
            return
        parts.append(_source(obj))
        for global_name in sorted(_names(obj.__code__)):
            if global_name in obj.__globals__:
                visit(obj.__globals__[global_name], global_name)

    for obj in objects:
        visit(obj)
    return hashlib.sha256("\n\x00".join(parts).encode()).hexdigest()


def checkpoint_file(name: str, config: dict, *, code=(), root: str | Path | None = None) -> Path:
    """Return the checkpoint file of a run of ``name`` with ``config`` and ``code``.

    The file name carries a hash of the configuration (any JSON-able dict) and of the source of
    ``code`` (the functions and classes that build and train the model, see
    :func:`code_digest`), so a rerun with the same parameters and code finds the finished model,
    and a changed parameter or a changed function trains afresh. ``root`` defaults to
    ``checkpoints/`` in the dlnotes cache (``DLNOTES_CACHE``).
    """
    from .data.store import cache_dir

    text = json.dumps(config, sort_keys=True, default=str) + "\n" + code_digest(*code)
    key = hashlib.sha256(text.encode()).hexdigest()
    folder = Path(root) if root is not None else cache_dir() / "checkpoints"
    return folder / f"{name}-{key[:12]}.pt"


def _rng_states(generators) -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    for key, g in generators.items():
        states[key] = g.get_state() if isinstance(g, torch.Generator) else g.bit_generator.state
    return states


def save_state(path: str | Path, *, generators: dict | None = None, **parts: Any) -> None:
    """Save training state to ``path`` atomically: a reader finds the old file or the new one.

    Objects with a ``state_dict`` (models, optimisers, schedulers, EMA) are saved as their state
    dicts; anything else (epoch, history, numpy arrays) as it is. ``generators`` (name → a torch
    ``Generator`` or a numpy ``Generator``) are saved with torch's global RNG state, so that a
    resumed run draws what the uninterrupted one would have.
    """
    state = {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in parts.items()}
    state["rng"] = _rng_states(generators or {})
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def _check_fits(key: str, obj: Any, saved: dict) -> None:
    # A module's load_state_dict copies what fits and raises only at the end, leaving a mix of
    # saved and fresh weights; checking names and shapes first keeps a fresh model fresh.
    if isinstance(obj, torch.nn.Module):
        own = obj.state_dict()
        if own.keys() != saved.keys():
            raise KeyError(f"{key}: saved entries differ from the model's")
        for name, value in own.items():
            if getattr(value, "shape", None) != getattr(saved[name], "shape", None):
                raise ValueError(f"{key}.{name}: saved shape differs from the model's")


def load_state(
    path: str | Path,
    *,
    generators: dict | None = None,
    map_location: str | torch.device | None = None,
    **parts: Any,
) -> dict | None:
    """Load what :func:`save_state` wrote into ``parts`` (each object's ``load_state_dict``) and
    ``generators``; return the saved entries, or None when there is nothing usable to resume.

    A file that cannot be read (truncated, empty, from an incompatible version) is named in one
    line, moved aside to ``<name>.corrupt`` and treated as absent, so the run trains afresh
    instead of failing on every rerun.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
        for key, obj in parts.items():  # all checked first: a failed load half-loads nothing
            _check_fits(key, obj, state[key])
        for key, obj in parts.items():
            obj.load_state_dict(state[key])
    except Exception as exc:  # any unreadable or mismatched file means: start afresh
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        print(f"checkpoint {path} is unusable ({type(exc).__name__}); moved to {aside.name}, "
              "training afresh")  # fmt: skip
        return None
    rng = state.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    for key, g in (generators or {}).items():
        if key in rng:
            if isinstance(g, torch.Generator):
                g.set_state(rng[key])
            else:
                g.bit_generator.state = rng[key]
    return state


@dataclass
class BestWeights:
    """Keep the weights of the best epoch in ``path``, and stop after ``patience`` epochs
    without a new best (Keras' rule: an epoch that only ties the best is no improvement).

    Pass it as ``fit(..., on_epoch_end=best)``; it reads ``history[key]`` (higher is better),
    so a resumed run continues with the same best. ``best.restore(model)`` loads those weights.
    """

    path: Path
    patience: int | None = None
    key: str = "val_metric"
    checkpoint: Path | None = None  # the run's own checkpoint, moved aside with lost best weights

    def best_epoch(self, history) -> int:
        """Return the 1-based epoch with the highest ``key`` (the first, if tied)."""
        return int(np.argmax(history[self.key])) + 1

    def __call__(self, epoch: int, model: torch.nn.Module, history) -> bool:
        best = self.best_epoch(history)
        if best == len(history[self.key]):
            save_state(self.path, model=model, epoch=best)
        return self.patience is not None and len(history[self.key]) - best >= self.patience

    def restore(self, model: torch.nn.Module) -> int:
        """Load the best weights into ``model`` and return their epoch.

        When they are missing or unusable the run's ``checkpoint`` is moved aside as well, so
        that the next run trains afresh, and the error says so.
        """
        state = load_state(self.path, model=model, map_location=next(model.parameters()).device)
        if state is not None:
            return int(state["epoch"])
        if self.checkpoint is not None and Path(self.checkpoint).exists():
            aside = Path(self.checkpoint).with_name(Path(self.checkpoint).name + ".corrupt")
            Path(self.checkpoint).replace(aside)
        raise RuntimeError(
            f"the best weights {self.path} are missing or unusable; the run's checkpoint was "
            "moved aside, so running again trains it afresh"
        )
