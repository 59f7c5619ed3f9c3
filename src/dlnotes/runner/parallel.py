"""Chapters in parallel: one job per chapter, one device per worker, through submitit.

A chapter's run is a :class:`ChapterJob`, a picklable callable that runs
:func:`dlnotes.runner.execute.run_chapter` in the process that calls it. `submitit
<https://github.com/facebookincubator/submitit>`_ carries that callable to a worker: its local
executor runs it as a subprocess on this machine (``--jobs N`` keeps N in flight), its Slurm
executor as one cluster job per chapter. Either way the report is installed by the same atomic
path as ``dlnotes run``, under the chapter's lock, so a failed or interrupted job leaves its old
report as it was, and two workers never write the same report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chapter import ChapterError

__all__ = ["ChapterJob", "JobOutcome", "worker_environments", "run_jobs", "summary_table"]

_POLL_S = 0.5


def _say(line: str) -> None:
    print(line, flush=True)  # one line per event, seen at once even through a pipe


@dataclass(frozen=True)
class ChapterJob:
    """One chapter's run with its settings and its worker's environment (picklable)."""

    root: str
    chapter: str
    profile: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    output: str | None = None
    cell_timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    dry_run: int | None = None  # batches per pass of a dry run; None: a real run
    max_epochs: int | None = None  # a dry run's cap on every epoch count; None: none

    def __call__(self) -> dict[str, Any]:
        """Run the chapter here; return its outcome as a dict (errors included, not raised)."""
        from ..data.store import DataError
        from ..params import ParameterError
        from .execute import run_chapter

        os.environ.update(self.env)  # this process is the worker: its kernel inherits these
        began = time.perf_counter()
        try:
            result = run_chapter(
                Path(self.root),
                self.chapter,
                profile=self.profile,
                overrides=self.overrides,
                device=self.device,
                output=Path(self.output) if self.output else None,
                progress=False,
                cell_timeout=self.cell_timeout,
                dry_run=self.dry_run,
                max_epochs=self.max_epochs,
            )
        except (ChapterError, ParameterError, DataError) as exc:
            return {"chapter": self.chapter, "ok": False, "error": str(exc),
                    "seconds": time.perf_counter() - began}  # fmt: skip
        except KeyboardInterrupt:
            return {"chapter": self.chapter, "ok": False, "seconds": time.perf_counter() - began,
                    "error": "interrupted; its previous report is unchanged"}  # fmt: skip
        return {"chapter": self.chapter, "ok": True, "report": str(result.report),
                "metrics": result.metrics, "seconds": result.seconds,
                "estimate": result.estimate}  # fmt: skip


@dataclass
class JobOutcome:
    """What became of one chapter's job, for the summary."""

    chapter: str
    status: str  # "ok", "failed", "interrupted"
    seconds: float
    device: str
    detail: str = ""
    report: str | None = None
    estimate: dict | None = None  # a dry run's prediction of the real run


def worker_environments(jobs: int, *, gpus: int | None = None, cores: int | None = None) -> list:
    """Return one environment per worker: a GPU each where there are GPUs (round robin), else an
    even share of the CPU cores as thread counts (torch and its BLAS read them at start-up).

    Each entry is ``(description, env)``.
    """
    if jobs < 1:
        raise ChapterError(f"--jobs must be at least 1, got {jobs}")
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    if gpus:
        return [(f"cuda:{i % gpus}", {"CUDA_VISIBLE_DEVICES": str(i % gpus)}) for i in range(jobs)]
    cores = cores or os.cpu_count() or 1
    threads = max(1, cores // jobs)
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    word = "thread" if threads == 1 else "threads"
    return [(f"cpu, {threads} {word}", dict(env)) for _ in range(jobs)]


def _executor(kind: str, folder: Path, *, partition: str | None, gpus_per_job: int,
              time_min: int):  # fmt: skip
    import submitit

    if kind == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=time_min)
        return executor
    if kind == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = {"timeout_min": time_min, "gpus_per_node": gpus_per_job, "name": "dlnotes"}
        if partition:
            params["slurm_partition"] = partition
        executor.update_parameters(**params)
        return executor
    raise ChapterError(f"unknown executor {kind!r}; choose local or slurm")


def run_jobs(
    jobs: list[ChapterJob],
    *,
    workers: int,
    executor: str = "local",
    folder: Path,
    partition: str | None = None,
    gpus_per_job: int = 1,
    time_min: int = 7 * 24 * 60,
    say: Callable[[str], None] = _say,
) -> list[JobOutcome]:
    """Run ``jobs``, at most ``workers`` at a time on this machine (``executor="local"``) or all
    submitted to Slurm; print one line as each starts and ends; return every outcome.

    Ctrl-C cancels every job still running (each stops its kernel; no report is written) and
    returns with those marked interrupted.
    """
    slots = worker_environments(workers) if executor == "local" else [
        (f"slurm, {gpus_per_job} GPU" + "s" * (gpus_per_job != 1), {})] * workers  # fmt: skip
    ex = _executor(executor, folder, partition=partition, gpus_per_job=gpus_per_job,
                   time_min=time_min)  # fmt: skip
    pending = list(jobs)
    running: dict[int, tuple[Any, ChapterJob, float]] = {}  # slot → (submitit job, job, start)
    free = list(range(len(slots))) if executor == "local" else list(range(len(jobs)))
    outcomes: dict[str, JobOutcome] = {}
    try:
        while pending or running:
            while pending and free:
                slot = free.pop(0)
                description, env = slots[slot % len(slots)]
                job = ChapterJob(**{**pending.pop(0).__dict__, "env": env})
                running[slot] = (ex.submit(job), job, time.perf_counter())
                say(f"{job.chapter}: started ({description})")
            for slot, (handle, job, began) in list(running.items()):
                if not handle.done():
                    continue
                del running[slot]
                free.append(slot)
                outcome = _outcome(handle, job, began, slots[slot % len(slots)][0])
                outcomes[job.chapter] = outcome
                say(f"{job.chapter}: {outcome.status} in {outcome.seconds:.0f} s"
                    + (f": {outcome.detail.splitlines()[0]}" if outcome.detail else ""))  # fmt: skip
            time.sleep(_POLL_S)
    except KeyboardInterrupt:
        say("interrupted: stopping every running chapter; their reports stay as they were")
        for handle, _, _ in running.values():
            handle.cancel(check=False)
        _wait([handle for handle, _, _ in running.values()], 60)  # one deadline for all
        for slot, (_, job, began) in running.items():
            outcomes[job.chapter] = JobOutcome(job.chapter, "interrupted",
                                               time.perf_counter() - began,
                                               slots[slot % len(slots)][0])  # fmt: skip
        for job in pending:
            outcomes[job.chapter] = JobOutcome(job.chapter, "interrupted", 0.0, "not started")
    return [outcomes[job.chapter] for job in jobs if job.chapter in outcomes]


def _wait(handles, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not all(h.done() for h in handles) and time.monotonic() < deadline:
        time.sleep(_POLL_S)


def _outcome(handle, job: ChapterJob, began: float, device: str) -> JobOutcome:
    wall = time.perf_counter() - began
    try:
        result = handle.result()
    except Exception as exc:  # the worker itself failed (killed, out of memory, cancelled)
        return JobOutcome(job.chapter, "failed", wall, device, str(exc).strip().splitlines()[-1])
    if result["ok"]:
        return JobOutcome(job.chapter, "ok", wall, device, "", result.get("report"),
                          result.get("estimate"))  # fmt: skip
    status = "interrupted" if result["error"].startswith("interrupted") else "failed"
    return JobOutcome(job.chapter, status, wall, device, result["error"])


def summary_table(outcomes: list[JobOutcome]) -> str:
    """Return the end-of-run summary: chapter, status, wall time, device."""
    lines = [f"{'chapter':16} {'status':12} {'wall s':>7}  device"]
    lines += [f"{o.chapter:16} {o.status:12} {o.seconds:7.0f}  {o.device}" for o in outcomes]
    return "\n".join(lines)
