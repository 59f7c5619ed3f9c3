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
SEED = 0  # random seed [0, 4294967295]
STEPS = None  # steps; None takes the profile's value [1, 1000]
LR = 0.1  # learning rate (0, 10]
FAIL = False  # raise in the last cell, to test failure handling
EDIT_SOURCE = False  # True: the run edits its own source, as a user might while it runs
KILL = False  # True: the kernel kills itself, as the out-of-memory killer would
SLEEP = 0  # seconds the last cell waits, to test interrupts [0, 600]

# %%
PROFILES = {"smoke": {"STEPS": 2}, "quick": {"STEPS": 5}, "full": {"STEPS": 50}}
from dlnotes.params import from_profile
from dlnotes.report import publish

(STEPS,) = from_profile(PROFILES, PROFILE, STEPS=STEPS)

# %%
import os
from pathlib import Path

result = publish(steps=STEPS, lr=LR, half=STEPS / 2)
publish(
    mirror_absolute=int(os.path.isabs(os.environ.get("DLNOTES_MIRROR", "/"))),
    cache_absolute=int(os.path.isabs(os.environ.get("DLNOTES_CACHE", "/"))),
)
if EDIT_SOURCE:
    source = Path("01_tiny.py")  # the kernel runs in notebooks/
    source.write_text(source.read_text().replace("half=STEPS / 2", "half=STEPS / 3"))
if KILL:
    os.kill(os.getpid(), 9)

publish(threads=int(os.environ.get("OMP_NUM_THREADS", "0")))

# %%
import time

time.sleep(SLEEP)
if FAIL:
    raise RuntimeError("asked to fail")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A throw-away dlnotes project with one tiny chapter, 01_tiny.

    The tiny chapter reads no dataset, so the caller's DLNOTES_MIRROR is cleared: a relative
    one (the README's `../shared/data`) would be resolved against the project and refused
    before the refusal a test is about."""
    monkeypatch.delenv("DLNOTES_MIRROR", raising=False)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "notebooks" / "01_tiny.py").write_text(textwrap.dedent(TINY_CHAPTER))
    return tmp_path
