"""The README's commands are the way in, and CI runs exactly them."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_has_three_commands_and_ci_runs_setup_and_tests():
    setup, build, tests = _readme_commands()
    assert "venv" in setup and "constraints.txt" in setup and build.endswith("dlnotes book")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci and tests in ci


def test_constraints_pin_what_pyproject_asks_for():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {
        line.split("==")[0].lower()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for dep in deps:
        name = re.split(r"[<>=!\[ ]", dep)[0].lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"


def test_importing_dlnotes_has_no_side_effects():
    import subprocess
    import sys

    code = """
import copy, random, matplotlib, numpy, torch
rc, state, np_state = copy.deepcopy(dict(matplotlib.rcParams)), random.getstate(), numpy.random.get_state()[1].copy()
torch_state, tf32 = torch.get_rng_state(), torch.backends.cuda.matmul.allow_tf32
import dlnotes, dlnotes.env, dlnotes.train, dlnotes.viz, dlnotes.params, dlnotes.report, dlnotes.state, dlnotes.models
import dlnotes.runner.execute, dlnotes.runner.book, dlnotes.runner.sphinxext, dlnotes.runner.cli
assert dict(matplotlib.rcParams) == rc, "rcParams changed"
assert random.getstate() == state and (numpy.random.get_state()[1] == np_state).all()
assert torch.equal(torch.get_rng_state(), torch_state)
assert torch.backends.cuda.matmul.allow_tf32 == tf32
print("clean")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "clean", out.stderr


def test_ruff_lint_and_format_are_clean():
    import subprocess
    import sys

    paths = ["src", "tests", "bench", *map(str, (ROOT / "notebooks").glob("*.py"))]
    for args in (["check"], ["format", "--check"]):
        out = subprocess.run(
            [sys.executable, "-m", "ruff", *args, *paths], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_the_kernel_side_never_imports_the_runner():
    import ast

    package = ROOT / "src" / "dlnotes"
    for path in package.rglob("*.py"):
        if "runner" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
                names = [a.name for a in node.names]
                assert "runner" not in target.split(".") and "runner" not in names, (
                    f"{path.relative_to(ROOT)} imports the runner side"
                )
            elif isinstance(node, ast.Import):
                assert not any(".runner" in a.name for a in node.names), path
