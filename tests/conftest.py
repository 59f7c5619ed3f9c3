from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    """The repository root."""
    return ROOT


TINY_CHAPTER = """\
# %% [markdown]
# # A tiny chapter

# %% tags=["parameters"]
PROFILE = "quick"  # smoke | quick | full
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0  # random seed
STEPS = None  # steps; None takes the profile's value
LR = 0.1  # learning rate
FAIL = False  # raise in the last cell, to test failure handling

# %%
PROFILES = {"smoke": {"STEPS": 2}, "quick": {"STEPS": 5}, "full": {"STEPS": 50}}
from dlnotes.params import from_profile
from dlnotes.report import publish

(STEPS,) = from_profile(PROFILES, PROFILE, STEPS=STEPS)

# %%
result = publish(steps=STEPS, lr=LR, half=STEPS / 2)

# %%
if FAIL:
    raise RuntimeError("asked to fail")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throw-away dlnotes project with one tiny chapter, 01_tiny."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "notebooks" / "01_tiny.py").write_text(textwrap.dedent(TINY_CHAPTER))
    return tmp_path
