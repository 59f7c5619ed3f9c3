import json
import os

import nbformat
import pytest

from dlnotes.cli import main
from dlnotes.files import write_atomic
from dlnotes.run import (
    ChapterError,
    list_chapters,
    pair_in_sync,
    recorded_settings,
    refresh_prose,
    resolve_chapter,
    run_chapter,
    staleness,
    sync_pair,
)


def test_resolve_chapter_by_name_number_or_slug(project):
    assert list_chapters(project) == ["01_tiny"]
    for name in ("01_tiny", "01", "tiny", "notebooks/01_tiny.py"):
        assert resolve_chapter(project, name) == "01_tiny"
    with pytest.raises(ChapterError, match="unknown chapter '02'; the chapters are: 01_tiny"):
        resolve_chapter(project, "02")


def test_sync_pair_writes_an_output_free_twin_once(project):
    py = project / "notebooks" / "01_tiny.py"
    ipynb = py.with_suffix(".ipynb")
    assert sync_pair(py) and pair_in_sync(py, ipynb)
    assert not sync_pair(py)
    nb = nbformat.read(ipynb, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "parameters" in nb.cells[1].metadata["tags"]
    py.write_text(py.read_text().replace("# A tiny chapter", "# A tiny chapter, edited"))
    assert not pair_in_sync(py, ipynb) and sync_pair(py) and pair_in_sync(py, ipynb)


def test_sync_pair_refuses_to_overwrite_a_newer_edited_notebook(project):
    py = project / "notebooks" / "01_tiny.py"
    sync_pair(py)
    ipynb = py.with_suffix(".ipynb")
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[0].source = "# Edited in Jupyter"
    nbformat.write(nb, ipynb)
    os.utime(ipynb, (py.stat().st_mtime + 10,) * 2)
    with pytest.raises(ChapterError, match="jupytext --sync"):
        sync_pair(py)


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_atomic(target, "{}")
    write_atomic(target, b"[1]")
    assert target.read_text() == "[1]" and os.listdir(target.parent) == ["a.json"]


@pytest.mark.slow
def test_run_chapter_writes_report_provenance_and_metrics(project):
    result = run_chapter(
        project, "01", profile="smoke", overrides={"LR": "0.5"}, device="cpu", progress=False
    )
    report = project / "book" / "chapters" / "01_tiny.ipynb"
    assert result.report == report
    meta = nbformat.read(report, as_version=4).metadata["dlnotes"]
    assert meta["profile"] == "smoke" and meta["parameters"]["STEPS"] == 2
    assert meta["parameters"]["LR"] == 0.5 and meta["device"].startswith("cpu")
    assert len(meta["source_hash"]) == 64 and meta["duration_s"] >= 0
    metrics = json.loads((project / "book" / "chapters" / "01_tiny.metrics.json").read_text())
    assert metrics == {"steps": 2, "lr": 0.5, "half": 1.0}
    assert staleness(project, "01_tiny") is None

    # A failing run names the cell and leaves the previous report and metrics untouched.
    before = report.read_bytes()
    with pytest.raises(
        ChapterError, match=r"failed in code cell \d+ .*RuntimeError: asked to fail"
    ):
        run_chapter(project, "01", profile="smoke", overrides={"FAIL": "true"}, progress=False)
    assert report.read_bytes() == before
    assert (
        json.loads((project / "book" / "chapters" / "01_tiny.metrics.json").read_text())["lr"]
        == 0.5
    )

    # Prose edits are carried into the report without re-execution; code edits make it stale.
    py = project / "notebooks" / "01_tiny.py"
    py.write_text(py.read_text().replace("# A tiny chapter", "# A tiny chapter, revised"))
    assert staleness(project, "01_tiny") is None and refresh_prose(project, "01_tiny")
    cells = nbformat.read(report, as_version=4).cells
    assert cells[0].source == "# A tiny chapter, revised"
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in cells)
    assert not refresh_prose(project, "01_tiny")
    py.write_text(py.read_text().replace("half=STEPS / 2", "half=STEPS / 4"))
    assert staleness(project, "01_tiny") == "stale"
    # `dlnotes book` re-executes a stale report as it was made: its profile and overrides (the
    # device is the rerun's own choice).
    assert recorded_settings(project, "01_tiny") == ("smoke", {"LR": 0.5})


def test_a_cell_over_the_timeout_fails_the_run_and_keeps_the_report(project):
    py = project / "notebooks" / "01_tiny.py"
    run_chapter(project, "01", profile="smoke", device="cpu", progress=False)
    report = project / "book" / "chapters" / "01_tiny.ipynb"
    before = report.read_bytes()
    py.write_text(py.read_text() + "\n# %%\nimport time\n\ntime.sleep(60)\n")
    with pytest.raises(ChapterError, match=r"01_tiny: a cell ran longer than 2 s"):
        run_chapter(project, "01", profile="smoke", device="cpu", progress=False, cell_timeout=2)
    assert report.read_bytes() == before


def test_cli_refuses_bad_parameters_before_running(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert main(["run", "01", "-p", "STEP", "3"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'STEP'" in err and "Did you mean STEPS?" in err
    assert "STEPS (int, default None)" in err
    assert main(["run", "01", "-p", "STEPS", "many"]) == 2
    assert "parameter STEPS expects an integer, got 'many'" in capsys.readouterr().err
    assert main(["run", "99"]) == 2
    assert "unknown chapter '99'" in capsys.readouterr().err
    assert not (project / "book" / "chapters" / "01_tiny.ipynb").exists()


def test_cli_lists_chapters_and_parameters(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert main(["run", "--list"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny  (profiles: smoke, quick, full)" in out and "FAIL (bool, default False)" in out
