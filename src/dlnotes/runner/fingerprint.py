"""What a report depends on, hashed before the chapter runs.

A chapter's fingerprint covers each code cell (its syntax tree and its tags) and the source of
every ``dlnotes`` function, class and constant the chapter imports, followed through the calls
and imports inside the package. A report is current while its recorded fingerprint equals the
one computed now; the parts that differ are the reasons it re-runs.

Why syntax trees rather than text: comments and layout do not change what runs, so editing a
comment in a code cell (a parameter's documented range, say) must not cost a re-execution of a
chapter that trains for an hour; :meth:`dlnotes.runner.chapter.Chapter.refresh` copies the new
text into the report instead. Why functions rather than whole modules: a change to one helper
marks exactly the chapters that reach it stale. Where the closure cannot be followed statically
(``globals()``, a whole module imported as a name) the whole module is covered instead.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Fingerprint", "cell_digest", "dependencies", "fingerprint"]

PACKAGE = "dlnotes"
DYNAMIC = {"globals", "vars", "__import__"}  # a body using these reaches names we cannot see


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cell_digest(source: str, tags=()) -> str:
    """Return the digest of one code cell: its syntax tree (text if it does not parse) and tags."""
    try:
        body = ast.dump(ast.parse(source))
    except SyntaxError:  # IPython magics and the like: the text is all there is
        body = source.strip()
    kept = sorted(t for t in tags if t != "injected-parameters")
    return _digest(body + "\0" + ",".join(kept))


def _package_dir() -> Path:
    import dlnotes  # the installed (editable) package is the source the kernel imports

    return Path(dlnotes.__file__).resolve().parent


class _Module:
    """One module of the package: its top-level bindings and where its imports point."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self.bindings: dict[str, ast.AST] = {}  # name -> the top-level statement that binds it
        self.imports: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute)
        self._scan(self.tree.body)

    def _scan(self, body) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bindings[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.bindings[name.id] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                self.imports.update(self.resolve_import(node))
            elif isinstance(node, (ast.If, ast.Try)):
                for part in ("body", "orelse", "finalbody"):
                    self._scan(getattr(node, part, []))
                for handler in getattr(node, "handlers", []):
                    self._scan(handler.body)

    def resolve_import(self, node) -> dict[str, tuple[str, str | None]]:
        return _resolve_import(node, self.package)


def _resolve_import(node, package: str) -> dict[str, tuple[str, str | None]]:
    """Return the package-internal names an import statement binds: name -> (module, attr)."""
    found = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                if alias.asname:
                    found[alias.asname] = (alias.name, None)
                else:  # `import dlnotes.train` binds `dlnotes` and reaches dlnotes.train
                    found[alias.name] = (alias.name, None)
        return found
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return found
    for alias in node.names:
        found[alias.asname or alias.name] = (module, alias.name)
    return found


@dataclass
class _Closure:
    root: Path
    modules: dict[str, _Module | None] = field(default_factory=dict)
    parts: dict[str, str] = field(default_factory=dict)

    def module(self, name: str) -> _Module | None:
        if name not in self.modules:
            parts = name.split(".")[1:]
            places = (
                [
                    self.root.joinpath(*parts).with_suffix(".py"),
                    self.root.joinpath(*parts, "__init__.py"),
                ]
                if parts
                else [self.root / "__init__.py"]
            )
            path = next((p for p in places if p.is_file()), None)
            self.modules[name] = _Module(name, path) if path else None
        return self.modules[name]

    def whole(self, name: str) -> None:
        """Cover a whole module (and what its imports reach)."""
        if name in self.parts:
            return
        mod = self.module(name)
        if mod is None:
            self.parts[name] = "missing"
            return
        self.parts[name] = _digest(ast.dump(mod.tree))
        for target, attr in mod.imports.values():
            self.name(target, attr) if attr else self.whole(target)

    def name(self, module: str, attr: str | None) -> None:
        """Cover ``module.attr``: a binding, a re-export, or a submodule imported by name."""
        if attr is None or attr == "*":
            self.whole(module)
            return
        mod = self.module(module)
        if mod is None:
            self.parts[f"{module}.{attr}"] = "missing"
            return
        if attr in mod.bindings:
            self._binding(mod, attr)
        elif attr in mod.imports:
            target, inner = mod.imports[attr]
            self.name(target, inner) if inner else self.whole(target)
        elif self.module(f"{module}.{attr}") is not None:
            self.whole(f"{module}.{attr}")
        else:
            self.parts[f"{module}.{attr}"] = "missing"

    def _binding(self, mod: _Module, attr: str) -> None:
        key = f"{mod.name}.{attr}"
        if key in self.parts:
            return
        node = mod.bindings[attr]
        self.parts[key] = _digest(ast.dump(node))
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):  # imports inside a function
                for target, name in mod.resolve_import(inner).values():
                    self.name(target, name)
            elif isinstance(inner, ast.Name):
                if inner.id in DYNAMIC:
                    self.whole(mod.name)
                elif inner.id in mod.bindings and inner.id != attr:
                    self._binding(mod, inner.id)
                elif inner.id in mod.imports:
                    target, name = mod.imports[inner.id]
                    self.name(target, name)


def dependencies(cells, package_dir: Path | None = None) -> dict[str, str]:
    """Return ``{dotted name: digest}`` for every package definition the code ``cells`` reach."""
    closure = _Closure(Path(package_dir) if package_dir else _package_dir())
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for module, attr in _resolve_import(node, PACKAGE).values():
                    closure.name(module, attr)
    return dict(sorted(closure.parts.items()))


@dataclass(frozen=True)
class Fingerprint:
    """The digests a report depends on: one per code cell, one per package definition."""

    cells: tuple[str, ...]
    dlnotes: dict[str, str]

    @property
    def hash(self) -> str:
        """One digest of everything, recorded as the report's ``source_hash``."""
        items = [*self.cells, *(f"{k}={v}" for k, v in sorted(self.dlnotes.items()))]
        return _digest("\n".join(items))

    def to_json(self) -> dict:
        return {"cells": list(self.cells), "dlnotes": dict(self.dlnotes)}

    @classmethod
    def from_json(cls, data: dict) -> Fingerprint:
        return cls(tuple(data.get("cells", ())), dict(data.get("dlnotes", {})))

    def changes_since(self, recorded: Fingerprint) -> list[str]:
        """Return, in words, what differs between ``recorded`` (the report's) and this one."""
        reasons = []
        if len(self.cells) != len(recorded.cells):
            reasons.append(f"code cells {len(recorded.cells)} → {len(self.cells)}")
        else:
            changed = [
                i + 1
                for i, (a, b) in enumerate(zip(recorded.cells, self.cells, strict=True))
                if a != b
            ]
            if changed:
                reasons.append(
                    f"code cell{'s' if len(changed) > 1 else ''} {', '.join(map(str, changed))} changed"
                )
        for name in sorted(self.dlnotes.keys() | recorded.dlnotes.keys()):
            old, new = recorded.dlnotes.get(name), self.dlnotes.get(name)
            if old is None:
                reasons.append(f"now uses {name}")
            elif new is None:
                reasons.append(f"no longer uses {name}")
            elif old != new:
                reasons.append(f"{name} changed")
        return reasons


def fingerprint(notebook, package_dir: Path | None = None) -> Fingerprint:
    """Return the fingerprint of a notebook (the chapter's source, parsed by jupytext)."""
    code = [
        c
        for c in notebook.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    cells = tuple(cell_digest(c.source, c.metadata.get("tags", [])) for c in code)
    return Fingerprint(cells, dependencies([c.source for c in code], package_dir))
