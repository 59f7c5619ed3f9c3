"""The fingerprint: which changes make a report stale, and which do not."""

import textwrap
from pathlib import Path

import jupytext
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlnotes.runner.fingerprint import cell_digest, dependencies, fingerprint

ROOT = Path(__file__).resolve().parents[1]


def test_cell_digest_ignores_comments_layout_and_the_injected_tag():
    base = cell_digest("x = 1\ny = f(x)", ["parameters"])
    assert cell_digest("x = 1  # one\n\ny = f( x )\n", ["parameters"]) == base
    assert cell_digest("x = 1\ny = f(x)", ["parameters", "injected-parameters"]) == base
    assert cell_digest("x = 2\ny = f(x)", ["parameters"]) != base
    assert cell_digest("x = 1\ny = f(x)", ["parameters", "remove-output"]) != base
    assert cell_digest("%matplotlib inline") != cell_digest("%matplotlib widget")


def test_fingerprint_skips_markdown_and_injected_cells():
    injected = new_code_cell("PROFILE = 'smoke'", metadata={"tags": ["injected-parameters"]})
    a = new_notebook(cells=[new_markdown_cell("a"), new_code_cell("x = 1")])
    b = new_notebook(cells=[new_markdown_cell("b"), injected, new_code_cell("x = 1\n")])
    assert fingerprint(a).hash == fingerprint(b).hash
    assert fingerprint(a).hash != fingerprint(new_notebook(cells=[new_code_cell("x = 2")])).hash


def _package(tmp_path, **modules) -> Path:
    package = tmp_path / "dlnotes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in modules.items():
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    return package


A = """
    from .b import helper
    SCALE = 2

    def f(x):
        return helper(x) * SCALE

    def g(x):
        from .c import late
        return late(x)

    def unrelated():
        return 0

    def dynamic():
        return globals()["f"]
"""
B = "def helper(x):\n    return x + 1\n\ndef other():\n    return 1\n"
C = "def late(x):\n    return -x\n"


def test_dependencies_follow_calls_constants_and_imports_inside_functions(tmp_path):
    package = _package(tmp_path, a=A, b=B, c=C)
    deps = dependencies(["from dlnotes.a import f, g"], package)
    assert set(deps) == {"dlnotes.a.f", "dlnotes.a.SCALE", "dlnotes.b.helper", "dlnotes.a.g",
                         "dlnotes.c.late"}  # fmt: skip
    # Editing what the chapter does not reach leaves the digests alone; the rest changes them.
    (package / "b.py").write_text(B.replace("return 1", "return 2"))
    assert dependencies(["from dlnotes.a import f, g"], package) == deps
    (package / "a.py").write_text(textwrap.dedent(A).replace("SCALE = 2", "SCALE = 3"))
    changed = dependencies(["from dlnotes.a import f, g"], package)
    assert [k for k in deps if deps[k] != changed[k]] == ["dlnotes.a.SCALE"]


def test_dependencies_cover_whole_modules_where_names_cannot_be_followed(tmp_path):
    package = _package(tmp_path, a=A, b=B, c=C)
    assert "dlnotes.a" in dependencies(["from dlnotes.a import dynamic"], package)
    assert "dlnotes.b" in dependencies(["import dlnotes.b as b"], package)
    assert "dlnotes.c" in dependencies(["from dlnotes import c"], package)
    assert dependencies(["from dlnotes.a import gone"], package) == {"dlnotes.a.gone": "missing"}


def test_real_chapters_reach_the_helpers_they_use_and_not_the_runner():
    notebook = jupytext.read(ROOT / "notebooks" / "06_vit.py")
    deps = fingerprint(notebook).dlnotes
    assert "dlnotes.train.fit" in deps and "dlnotes.data.images.load_images" in deps
    assert "dlnotes.train.frechet_distance" not in deps  # imported by chapters 04 and 05 only
    assert not [k for k in deps if k.startswith("dlnotes.runner")]
