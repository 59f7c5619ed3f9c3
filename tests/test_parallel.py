"""Chapters in parallel (``--jobs``, ``--executor``): same results, one device per worker, a
failure or an interrupt leaves every report it did not finish as it was."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlnotes.runner.chapter import Chapter, ChapterError
from dlnotes.runner.cli import main
from dlnotes.runner.parallel import worker_environments

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def two(project):
    """The tiny project with a second chapter, 02_tiny."""
    source = (project / "notebooks" / "01_tiny.py").read_text()
    (project / "notebooks" / "02_tiny.py").write_text(source.replace("A tiny chapter", "Another"))
    return project


def _metrics(folder: Path) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.metrics.json"))}


def test_workers_get_one_gpu_each_or_an_even_share_of_the_cores():
    assert worker_environments(2, gpus=4) == [
        ("cuda:0", {"CUDA_VISIBLE_DEVICES": "0"}), ("cuda:1", {"CUDA_VISIBLE_DEVICES": "1"})]  # fmt: skip
    assert [e["CUDA_VISIBLE_DEVICES"] for _, e in worker_environments(3, gpus=2)] == ["0", "1", "0"]
    cpu = worker_environments(2, gpus=0, cores=8)
    assert cpu[0] == ("cpu, 4 threads", {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"})
    assert worker_environments(4, gpus=0, cores=2)[0][1]["OMP_NUM_THREADS"] == "1"


@pytest.mark.slow
def test_jobs_2_gives_the_same_metrics_as_jobs_1(two, monkeypatch, capsys):
    monkeypatch.chdir(two)
    one, both = two / "one", two / "both"
    assert main(["run", "01", "02", "--jobs", "1", "--profile", "smoke", "--output-dir",
                 str(one), "--device", "cpu"]) == 0  # fmt: skip
    assert main(["run", "--all", "--jobs", "2", "--profile", "smoke", "--output-dir", str(both),
                 "--device", "cpu"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "01_tiny: started" in out and "02_tiny: ok in" in out and "wall s" in out
    first, second = _metrics(one), _metrics(both)
    assert set(first) == {"01_tiny.metrics.json", "02_tiny.metrics.json"}
    cores = os.cpu_count()
    for name in first:
        assert first[name].pop("threads") == cores and second[name].pop("threads") == max(
            1, cores // 2
        )  # one worker has every core; two share them
    assert first == second
    assert not list((two / "book" / "chapters").glob("*.ipynb"))  # only --output-dir written


@pytest.mark.slow
def test_a_failing_chapter_leaves_the_other_installed_and_its_own_old_report(two, monkeypatch):
    monkeypatch.chdir(two)
    assert main(["run", "--all", "--profile", "smoke", "--device", "cpu", "--no-progress"]) == 0
    old = {c: Chapter(two, c).report.read_bytes() for c in ("01", "02")}
    broken = two / "notebooks" / "02_tiny.py"
    broken.write_text(broken.read_text().replace("if FAIL:", "if True:"))
    assert main(["run", "--all", "--jobs", "2", "--profile", "smoke", "--device", "cpu",
                 "-p", "LR", "0.5"]) == 2  # fmt: skip
    assert Chapter(two, "02").report.read_bytes() == old["02"]  # the failed one: unchanged
    assert Chapter(two, "01").report.read_bytes() != old["01"]  # the other: installed
    assert json.loads(Chapter(two, "01").metrics.read_text())["lr"] == 0.5


@pytest.mark.slow
def test_the_submitit_local_executor_runs_a_book_chapter_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["run", "04_gan", "--executor", "local", "--profile", "smoke", "--device", "cpu",
                 "--output-dir", str(tmp_path)]) == 0  # fmt: skip
    assert "04_gan: ok in" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "04_gan.metrics.json").read_text())
    assert metrics["train_images"] > 0 and metrics["dcgan_d_loss"] > 0
    assert list((ROOT / "build" / "jobs").glob("*_submitted.pkl"))  # it went through submitit


def _kernels_in(folder: Path) -> list[int]:
    """Return the pids of processes whose working directory is ``folder`` (the kernels)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == folder:
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the kernels")
def test_an_interrupt_stops_every_worker_and_writes_no_report(two):
    env = {**os.environ, "DLNOTES_ROOT": str(two)}
    command = [sys.executable, "-m", "dlnotes.runner.cli", "run", "--all", "--jobs", "2",
               "--profile", "smoke", "--device", "cpu", "-p", "SLEEP", "120"]  # fmt: skip
    # As from a terminal: its own process group, and SIGINT handled (a shell running this suite
    # in the background hands its children SIGINT ignored, and Python then keeps it ignored).
    run = subprocess.Popen(command, cwd=two, env=env, stdout=subprocess.PIPE, text=True,
                           stderr=subprocess.STDOUT, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 90
    while len(_kernels_in(two / "notebooks")) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_kernels_in(two / "notebooks")) >= 2, "both chapters should be running"
    time.sleep(3)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    out, _ = run.communicate(timeout=240)  # kernels stop slowly on a loaded machine
    assert run.returncode == 130, out
    assert "interrupted" in out
    deadline = time.monotonic() + 15
    while _kernels_in(two / "notebooks") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _kernels_in(two / "notebooks"), "a kernel outlived the interrupt"
    assert not list((two / "book" / "chapters").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the kernels")
def test_an_interrupted_run_says_so_in_one_line(project):
    """Ctrl-C during a cell: one line saying what happened, not the cell task's traceback that
    asyncio printed at exit (seen on a chapter interrupted mid-training)."""
    env = {**os.environ, "DLNOTES_ROOT": str(project)}
    command = [sys.executable, "-m", "dlnotes.runner.cli", "run", "01_tiny", "--profile",
               "smoke", "--device", "cpu", "-p", "SLEEP", "120"]  # fmt: skip
    run = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True,
                           stderr=subprocess.STDOUT, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 90
    while not _kernels_in(project / "notebooks") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _kernels_in(project / "notebooks"), "the chapter should be running"
    time.sleep(5)  # into the sleeping cell
    os.killpg(run.pid, signal.SIGINT)
    out, _ = run.communicate(timeout=240)
    assert run.returncode == 130, out
    assert out.strip().splitlines()[-1] == "dlnotes: interrupted; existing reports are unchanged"
    assert "Traceback" not in out and "never retrieved" not in out, out[-3000:]
    assert not list((project / "book" / "chapters").glob("*.ipynb"))


@pytest.mark.slow
def test_book_runs_stale_chapters_as_parallel_jobs_and_builds_only_when_all_succeed(
    two, monkeypatch
):
    from dlnotes.runner import book

    built = []
    monkeypatch.setattr(book, "build_language", lambda b, out, language: built.append(language))
    broken = two / "notebooks" / "02_tiny.py"
    source = broken.read_text()
    broken.write_text(source.replace("if FAIL:", "if True:"))
    settings = {"workers": 2, "executor": "local"}
    with pytest.raises(book.ChapterError, match="not built: 02_tiny did not finish"):
        book.build_book(two, parallel=settings)
    assert Chapter(two, "01").report.exists() and not Chapter(two, "02").report.exists()
    assert built == []
    broken.write_text(source)
    book.build_book(two, parallel=settings)  # 01 is current now; only 02 runs
    assert Chapter(two, "02").report.exists() and built == ["en", "zh_CN"]


# --- the datasets a run needs, prepared under a lock per dataset ---


@pytest.mark.parametrize(
    ("chapter", "profile", "expected"),
    [
        ("01", "quick", ["fashion-mnist", "mnist"]),
        ("02", "quick", ["cifar10-jpg", "fashion-mnist", "mnist", "tiny-imagenet-100-subset"]),
        ("03", "quick", ["imdb"]),  # load_imdb() names no dataset: its default is read
        ("05", "full", ["horse2zebra-subset500"]),  # the DATASET parameter's value
        ("06", "full", ["mnist"]),
        ("07", "quick", []),  # generated data only
        ("02", "smoke", []),  # stand-in data: nothing to fetch
        ("05", "smoke", []),
    ],
)
def test_a_run_knows_which_datasets_it_reads(chapter, profile, expected):
    from dlnotes.runner.datasets import chapter_datasets

    chapter = Chapter(ROOT, chapter)
    params = chapter.params.resolved({"PROFILE": profile})
    assert chapter_datasets(chapter.source, params) == expected


def test_a_parameter_naming_another_dataset_replaces_the_default():
    from dlnotes.runner.datasets import chapter_datasets

    chapter = Chapter(ROOT, "05")
    params = chapter.params.resolved({"PROFILE": "quick", "DATASET": "cifar10-jpg"})
    assert chapter_datasets(chapter.source, params) == ["cifar10-jpg"]


_WAIT_FOR_LOCK = """
import sys, time
from pathlib import Path
from dlnotes.runner.datasets import dataset_lock
with dataset_lock("mnist", Path(sys.argv[1])):
    print(f"got {time.monotonic()!r}", flush=True)
"""


def test_a_second_run_waits_for_the_dataset_lock(tmp_path):
    from dlnotes.runner.datasets import dataset_lock

    lines = []
    with dataset_lock("mnist", tmp_path, say=lines.append):
        other = subprocess.Popen([sys.executable, "-c", _WAIT_FOR_LOCK, str(tmp_path)],
                                 stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(3)
        assert other.poll() is None, "the second run went ahead while the lock was held"
        released = time.monotonic()
    out, _ = other.communicate(timeout=60)
    assert other.returncode == 0 and "another run is preparing it" in out
    assert float(out.split("got ")[1]) >= released
    assert not lines  # the first run took the free lock without waiting
    with dataset_lock("mnist", tmp_path, say=lines.append):  # and it is free again afterwards
        assert not lines


_PREPARE = """
import sys
from dlnotes.runner.datasets import prepare_datasets
prepare_datasets([sys.argv[1]])
print("prepared", flush=True)
"""


@pytest.mark.slow
@pytest.mark.mirror
@pytest.mark.parametrize("dataset", ["cifar10-jpg", "mnist"])
def test_two_runs_on_a_cold_cache_prepare_a_dataset_once_and_both_succeed(tmp_path, dataset):
    # Without the lock the second process unpacks the same archive and fails to rename its copy
    # onto the first's (cifar10-jpg), or deletes the decompressed files the first is reading
    # (mnist).
    mirror = os.environ.get("DLNOTES_MIRROR")
    if not mirror:
        pytest.fail("set DLNOTES_MIRROR to the dataset mirror (tests marked `mirror` need it)")
    env = {**os.environ, "DLNOTES_CACHE": str(tmp_path / "cache"),
           "DLNOTES_MIRROR": str(Path(mirror).resolve())}  # fmt: skip
    runs = [subprocess.Popen([sys.executable, "-c", _PREPARE, dataset], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("another run is preparing it" in out for out in outputs) == 1, outputs
    from dlnotes.data.store import verify_cache

    report = verify_cache(tmp_path / "cache")
    assert report and not [line for line in report if line.startswith("damaged")], report


def test_a_dataset_that_cannot_be_had_fails_before_the_kernel_starts(project, monkeypatch):
    import dataclasses

    from dlnotes.data.registry import REGISTRY
    from dlnotes.runner.execute import run_chapter

    source = project / "notebooks" / "01_tiny.py"
    source.write_text(source.read_text() + '\n# %%\nfrom dlnotes.data import load_images\n'
                      'digits = load_images("mnist", progress=False)\n')  # fmt: skip
    (project / "mirror").mkdir()  # a mirror without MNIST, and no official address to try
    monkeypatch.setenv("DLNOTES_MIRROR", str(project / "mirror"))
    monkeypatch.setenv("DLNOTES_CACHE", str(project / "cache"))
    monkeypatch.setitem(REGISTRY, "mnist", dataclasses.replace(REGISTRY["mnist"], urls=()))
    began = time.perf_counter()
    with pytest.raises(ChapterError, match=r"01_tiny: nothing was run, no report was written.*"
                       r"could not get train-images-idx3-ubyte.gz of dataset mnist"):  # fmt: skip
        run_chapter(project, "01", progress=False, device="cpu")
    assert time.perf_counter() - began < 20  # refused before a kernel started
    assert not (project / "book" / "chapters" / "01_tiny.ipynb").exists()


@pytest.mark.mirror
def test_data_fetch_and_verify_wait_for_a_run_preparing_the_dataset(tmp_path):
    import select

    from dlnotes.runner.datasets import dataset_lock

    mirror = os.environ.get("DLNOTES_MIRROR")
    if not mirror:
        pytest.fail("set DLNOTES_MIRROR to the dataset mirror (tests marked `mirror` need it)")
    cache = tmp_path / "cache"
    env = {**os.environ, "DLNOTES_CACHE": str(cache), "PYTHONUNBUFFERED": "1",
           "DLNOTES_MIRROR": str(Path(mirror).resolve())}  # fmt: skip
    for command in (["fetch", "mnist"], ["verify"]):
        with dataset_lock("mnist", cache, say=lambda line: None):
            other = subprocess.Popen([sys.executable, "-m", "dlnotes.runner.cli", "data", *command],
                                     env=env, text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
            # Its first line, once it has started (importing torch takes seconds): it waits.
            ready, _, _ = select.select([other.stdout], [], [], 60)
            first = other.stdout.readline() if ready else ""
            assert "dataset mnist: another run is preparing it" in first, first
            time.sleep(1)
            assert other.poll() is None, f"`dlnotes data {command[0]}` went on under the lock"
        out, _ = other.communicate(timeout=120)
        assert other.returncode == 0, out
    assert "ok       mnist/train-images-idx3-ubyte.gz" in out  # verify saw what fetch got
