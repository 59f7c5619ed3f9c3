import fcntl
import json
import os
import shutil
import socket
import time

import nbformat
import pytest

from dlnotes.files import write_atomic
from dlnotes.params import ParameterError
from dlnotes.runner import fingerprint as fingerprint_module
from dlnotes.runner.chapter import Chapter, ChapterError, list_chapters, pair_in_sync
from dlnotes.runner.cli import main
from dlnotes.runner.execute import run_chapter


def _run(project, **kwargs):
    kwargs.setdefault("profile", "smoke")
    kwargs.setdefault("device", "cpu")
    return run_chapter(project, "01", progress=False, **kwargs)


def _edit(project, old, new):
    py = project / "notebooks" / "01_tiny.py"
    assert old in py.read_text()
    py.write_text(py.read_text().replace(old, new))


def test_chapter_is_found_by_name_number_or_slug(project):
    assert list_chapters(project) == ["01_tiny"]
    for name in ("01_tiny", "01", "tiny", "notebooks/01_tiny.py"):
        assert Chapter(project, name).name == "01_tiny"
    with pytest.raises(ChapterError, match="unknown chapter '02'; the chapters are: 01_tiny"):
        Chapter(project, "02")


def test_sync_pair_writes_an_output_free_twin_once(project):
    chapter = Chapter(project, "01")
    assert chapter.sync_pair() and pair_in_sync(chapter.py, chapter.ipynb)
    assert not Chapter(project, "01").sync_pair()
    nb = nbformat.read(chapter.ipynb, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "parameters" in nb.cells[1].metadata["tags"]
    _edit(project, "# A tiny chapter", "# A tiny chapter, edited")
    chapter = Chapter(project, "01")
    assert not pair_in_sync(chapter.py, chapter.ipynb) and chapter.sync_pair()


def test_sync_pair_refuses_to_overwrite_a_newer_edited_notebook(project):
    chapter = Chapter(project, "01")
    chapter.sync_pair()
    nb = nbformat.read(chapter.ipynb, as_version=4)
    nb.cells[0].source = "# Edited in Jupyter"
    nbformat.write(nb, chapter.ipynb)
    os.utime(chapter.ipynb, (chapter.py.stat().st_mtime + 10,) * 2)
    with pytest.raises(ChapterError, match="jupytext --sync"):
        Chapter(project, "01").sync_pair()


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_atomic(target, "{}")
    write_atomic(target, b"[1]")
    assert target.read_text() == "[1]" and os.listdir(target.parent) == ["a.json"]


@pytest.mark.slow
def test_run_chapter_writes_report_provenance_and_metrics(project):
    result = _run(project, overrides={"LR": "0.5"})
    chapter = Chapter(project, "01")
    assert result.report == chapter.report
    meta = nbformat.read(chapter.report, as_version=4).metadata["dlnotes"]
    assert meta["profile"] == "smoke" and meta["parameters"]["STEPS"] == 2
    assert meta["parameters"]["LR"] == 0.5 and meta["device"].startswith("cpu")
    assert len(meta["source_hash"]) == 64 and meta["duration_s"] >= 0
    assert "dlnotes.report.publish" in meta["source_parts"]["dlnotes"]
    from dlnotes.env import machine_record

    assert meta["machine"] == machine_record("cpu")  # what decides bf16 and the kernels here
    metrics = json.loads(chapter.metrics.read_text())
    assert metrics["steps"] == 2 and metrics["lr"] == 0.5 and metrics["half"] == 1.0
    assert chapter.staleness() == []

    # A failing run names the cell and leaves the previous report and metrics untouched.
    before = chapter.report.read_bytes()
    with pytest.raises(
        ChapterError, match=r"failed in code cell \d+ .*RuntimeError: asked to fail"
    ):
        _run(project, overrides={"FAIL": "true"})
    assert chapter.report.read_bytes() == before
    assert json.loads(chapter.metrics.read_text())["lr"] == 0.5

    # Prose edits and comment edits are carried into the report without re-execution.
    _edit(project, "# A tiny chapter", "# A tiny chapter, revised")
    _edit(project, "result = publish(", "# the numbers\nresult = publish(")
    chapter = Chapter(project, "01")
    assert chapter.staleness() == [] and chapter.refresh()
    cells = nbformat.read(chapter.report, as_version=4).cells
    assert cells[0].source == "# A tiny chapter, revised"
    assert any("# the numbers" in c.source for c in cells if c.cell_type == "code")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in cells)
    assert not Chapter(project, "01").refresh()

    # A code edit makes it stale, and says which cell; `dlnotes book` re-executes it as it was
    # made: its profile and overrides (the device is the rerun's own choice).
    _edit(project, "half=STEPS / 2", "half=STEPS / 4")
    chapter = Chapter(project, "01")
    assert chapter.staleness() == ["code cell 3 changed"]
    assert chapter.recorded_settings() == ("smoke", {"LR": 0.5})
    with pytest.raises(ChapterError, match="stale"):
        chapter.refresh()


def test_book_says_why_a_report_is_out_of_date(project):
    from dlnotes.runner.book import build_book

    _run(project)
    _edit(project, "half=STEPS / 2", "half=STEPS / 5")
    with pytest.raises(ChapterError, match=r"01_tiny is out of date \(code cell 3 changed\)"):
        build_book(project, execute=False)


def test_a_tag_change_makes_the_report_stale(project):
    _run(project)
    _edit(project, "# %%\nimport os", '# %% tags=["remove-output"]\nimport os')
    assert Chapter(project, "01").staleness() == ["code cell 3 changed"]


@pytest.mark.slow
def test_an_edit_during_the_run_leaves_the_report_stale(project):
    # The run edits its own source (cell 3), as a user editing the .py mid-run would: the report
    # records the fingerprint of the text that ran, so it is stale against the edited source.
    result = _run(project, overrides={"EDIT_SOURCE": "true"})
    assert result.metrics["half"] == 1.0  # the code as it was when the run began
    assert "half=STEPS / 3" in Chapter(project, "01").py.read_text()
    assert Chapter(project, "01").staleness() == ["code cell 3 changed"]


def test_a_changed_dlnotes_helper_marks_the_chapters_that_use_it_stale(project, monkeypatch):
    import dlnotes

    package = project / "pkg" / "dlnotes"
    shutil.copytree(
        os.path.dirname(dlnotes.__file__), package, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(fingerprint_module, "_package_dir", lambda: package)
    chapter = Chapter(project, "01")
    meta = {"source_hash": chapter.fingerprint.hash, "source_parts": chapter.fingerprint.to_json()}
    report = nbformat.v4.new_notebook(metadata={"dlnotes": meta})
    nbformat.write(report, chapter.report)
    assert Chapter(project, "01").staleness() == []

    # A helper the chapter does not reach: still current.
    viz = package / "viz.py"
    viz.write_text(viz.read_text().replace('"""Return', '"""Give back', 1))
    assert Chapter(project, "01").staleness() == []
    # One it reaches through from_profile (ParameterError), and one it imports (publish).
    params = package / "params.py"
    params.write_text(params.read_text().replace("does not accept", "refuses", 1))
    assert Chapter(project, "01").staleness() == ["dlnotes.params.ParameterError changed"]
    report_py = package / "report.py"
    report_py.write_text(report_py.read_text().replace("clean = {}", "clean = dict()"))
    assert Chapter(project, "01").staleness() == [
        "dlnotes.params.ParameterError changed",
        "dlnotes.report.publish changed",
    ]


def test_a_cell_over_the_timeout_fails_the_run_and_keeps_the_report(project):
    _run(project)
    report = Chapter(project, "01").report
    before = report.read_bytes()
    py = project / "notebooks" / "01_tiny.py"
    py.write_text(py.read_text() + "\n# %%\nimport time\n\ntime.sleep(60)\n")
    with pytest.raises(ChapterError, match=r"01_tiny: a cell ran longer than 2 s"):
        _run(project, cell_timeout=2)
    assert report.read_bytes() == before


@pytest.mark.slow
def test_a_dead_kernel_is_named_and_keeps_the_report(project):
    _run(project)
    report = Chapter(project, "01").report
    before = report.read_bytes()
    with pytest.raises(ChapterError, match=r"01_tiny: the kernel died .* is unchanged"):
        _run(project, overrides={"KILL": "true"})
    assert report.read_bytes() == before


@pytest.mark.slow
def test_relative_mirror_and_cache_reach_the_kernel_resolved(project, monkeypatch):
    (project / "mirror").mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DLNOTES_MIRROR", "mirror")
    monkeypatch.setenv("DLNOTES_CACHE", "relcache")
    result = _run(project)
    assert result.metrics["mirror_absolute"] == 1 and result.metrics["cache_absolute"] == 1
    assert (project / "relcache").is_dir() and not (project / "notebooks" / "relcache").exists()
    assert os.environ["DLNOTES_MIRROR"] == "mirror"  # the caller's environment is restored


def _refused(project, monkeypatch, capsys, *args, match):
    monkeypatch.chdir(project)
    assert main(["run", "01", "--no-progress", "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert not (project / "book" / "chapters" / "01_tiny.ipynb").exists()
    return err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["-p", "STEP", "3"], "unknown parameter 'STEP'"),
        (["-p", "STEPS", "many"], "parameter STEPS expects an integer, got 'many'"),
        (["-p", "STEPS", "0"], "parameter STEPS must be an integer in [1, 1000], got 0"),
        (["-p", "STEPS", "-5"], "parameter STEPS must be an integer in [1, 1000], got -5"),
        (["-p", "STEPS", "2.5"], "parameter STEPS expects an integer"),
        (["-p", "LR", "1e999"], "parameter LR must be a finite number, got inf"),
        (["-p", "LR", "nan"], "parameter LR expects a number"),
        (["-p", "LR", "1e9"], "parameter LR must be a number in (0, 10], got 1000000000.0"),
        (["-p", "LR", "0"], "parameter LR must be a number in (0, 10], got 0.0"),
        (["-p", "LR", "None"], "parameter LR cannot be None"),
        (["-p", "SEED", "-1"], "parameter SEED must be an integer in [0, 4294967295]"),
        (["-p", "FAIL", "yes"], "parameter FAIL expects true or false"),
        (["-p", "STEPS", "5", "-p", "STEPS", "7"], "-p STEPS given more than once"),
        (
            ["--profile", "smoke", "-p", "PROFILE", "turbo"],
            "--profile smoke contradicts -p PROFILE",
        ),
        (["-p", "PROFILE", "turbo"], "PROFILE must be one of smoke, quick, full, got 'turbo'"),
        (["-p", "DEVICE", "tpu"], "contradicts -p DEVICE tpu"),
        (["--cell-timeout", "-1"], "--cell-timeout must be a positive number of seconds"),
        (["--cell-timeout", "0"], "--cell-timeout must be a positive number of seconds"),
        (["--cell-timeout", "nan"], "--cell-timeout must be a positive number of seconds"),
        (["--output", "out.txt"], "must end in .ipynb"),
        (["--output", "notebooks/01_tiny.ipynb"], "is the chapter's own source"),
        (["--output", "notebooks"], "must end in .ipynb"),
    ],
)
def test_cli_refuses_bad_input_before_running(project, monkeypatch, capsys, args, match):
    _refused(project, monkeypatch, capsys, *args, match=match)


def test_cli_refuses_an_unwritable_output_before_running(project, monkeypatch, capsys, tmp_path):
    if os.geteuid() == 0:  # root writes anywhere: a file where the folder should be stands in
        (tmp_path / "ro").write_text("")
        target = tmp_path / "ro" / "out.ipynb"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "out.ipynb"
    _refused(project, monkeypatch, capsys, "--output", str(target), match="is not writable")


@pytest.mark.parametrize(
    ("variable", "value", "match"),
    [
        ("DLNOTES_MIRROR", "no/such/folder", "DLNOTES_MIRROR=no/such/folder is not a folder"),
        ("DLNOTES_CACHE", "afile", "DLNOTES_CACHE=afile is a file"),
        ("DLNOTES_CACHE", "https://example.org/c", "must be a folder, not a URL"),
    ],
)
def test_cli_refuses_unusable_data_paths(project, monkeypatch, capsys, variable, value, match):
    (project / "afile").write_text("")
    monkeypatch.setenv(variable, value)
    _refused(project, monkeypatch, capsys, match=match)


def test_a_silent_mirror_is_refused_within_seconds(project, monkeypatch, capsys):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    # The kernel's listen queue accepts the connection; nothing ever reads or answers it.
    monkeypatch.setenv("DLNOTES_MIRROR", f"http://127.0.0.1:{server.getsockname()[1]}/data")
    t0 = time.perf_counter()
    try:
        _refused(project, monkeypatch, capsys, match="did not answer within 5 s")
    finally:
        server.close()
    assert time.perf_counter() - t0 < 15


def test_a_second_run_of_the_same_chapter_is_refused(project, monkeypatch, capsys):
    lock = project / "build" / "runs" / "01_tiny.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        _refused(project, monkeypatch, capsys, match="is already being run by another process")


def test_run_chapter_refuses_contradictions_in_its_arguments(project):
    with pytest.raises(ParameterError, match="--profile quick contradicts -p PROFILE smoke"):
        run_chapter(project, "01", profile="quick", overrides={"PROFILE": "smoke"})


def test_cli_lists_chapters_and_parameters(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert main(["run", "--list"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny  (profiles: smoke, quick, full)" in out and "FAIL (bool, default False)" in out
    assert main(["run", "01", "--list"]) == 2
    assert "--list takes no chapter" in capsys.readouterr().err
