"""The ``dlnotes`` command: run chapters, build the book, update translations."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..params import DEVICES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlnotes", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a chapter with papermill and write its report")
    run.add_argument(
        "chapter",
        nargs="*",
        help="chapter names, e.g. 07_activations (or 07); several run in parallel",
    )
    run.add_argument("--all", action="store_true", help="run every chapter")
    run.add_argument("--list", action="store_true", help="list the chapters and their parameters")
    run.add_argument("--profile", choices=["smoke", "quick", "full"], help="size profile")
    run.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameter (repeatable)",
    )
    run.add_argument("--device", choices=DEVICES, help="device (default auto)")
    run.add_argument(
        "--output", type=Path, help="report path (default book/chapters/NN_slug.ipynb)"
    )
    run.add_argument(
        "--no-progress", action="store_true", help="hide papermill's cell progress bar"
    )
    run.add_argument(
        "--cell-timeout",
        type=float,
        metavar="SECONDS",
        help="fail the run if one cell takes longer (default: no limit)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="run at the profile's real shapes with every pass cut to a few batches; the "
        "report (placeholders) goes to build/dry/",
    )
    run.add_argument(
        "--estimate",
        action="store_true",
        help="a dry run that also prints the predicted time of the real run, per section",
    )
    run.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="batches per pass in a dry run (default 3)",
    )
    run.add_argument(
        "--max-epochs",
        type=int,
        metavar="N",
        help="in a dry run, also cap every epoch count of the profile at N (default: kept); "
        "the estimate is then for the capped counts",
    )

    run.add_argument(
        "--output-dir",
        type=Path,
        help="folder for the reports of several chapters (default book/chapters)",
    )
    _parallel_options(run)

    book = sub.add_parser(
        "book", help="re-execute stale chapters, then build the site in both languages"
    )
    _parallel_options(book)
    book.add_argument(
        "--no-execute",
        action="store_true",
        help="render the existing reports only; fail if one is missing or stale",
    )
    book.add_argument(
        "--profile",
        choices=["smoke", "quick", "full"],
        help="profile for chapters that must be re-executed (default: the profile and parameters "
        "each report was made with; quick for a missing report)",
    )
    book.add_argument("--output", type=Path, help="site folder (default book/_build/site)")
    book.add_argument(
        "--language",
        action="append",
        choices=["en", "zh_CN"],
        help="build only this language (repeatable; default both)",
    )

    sub.add_parser("i18n", help="extract messages and update the zh_CN catalogs (sphinx-intl)")

    data = sub.add_parser("data", help="fetch, verify and list datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="get datasets into the cache, checked and unpacked")
    fetch.add_argument("names", nargs="*", help="dataset names (see `dlnotes data list`)")
    fetch.add_argument("--all", action="store_true", help="every dataset the mirror holds")
    fetch.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept files for which no checksum is recorded",
    )
    data_sub.add_parser("verify", help="re-check the cache; remove and report damaged files")
    data_sub.add_parser("list", help="list the datasets with their sources")
    return parser


def _parallel_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("parallel chapters (one device per worker)")
    group.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="chapters at once; each worker gets one GPU, or an even share of the CPU cores",
    )  # fmt: skip
    group.add_argument(
        "--executor", choices=["local", "slurm"],
        help="run each chapter as a submitit job: local subprocesses, or one Slurm job per chapter",
    )  # fmt: skip
    group.add_argument("--partition", help="Slurm partition (with --executor slurm)")
    group.add_argument(
        "--gpus-per-job", type=int, default=1, metavar="N", help="GPUs per Slurm job (default 1)"
    )
    group.add_argument(
        "--time", type=int, default=24 * 60, metavar="MINUTES",
        help="time limit of each Slurm job (default 1440)",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dlnotes`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    from ..data.store import DataError
    from ..params import ParameterError
    from .chapter import ChapterError, find_root

    try:
        if args.command == "data":
            return _data(args)
        root = find_root()
        if args.command == "run":
            return _run(root, args)
        if args.command == "book":
            from .book import build_book

            site = build_book(
                root,
                output=args.output,
                execute=not args.no_execute,
                profile=args.profile,
                languages=args.language,
                parallel=_parallel_settings(root, args),
            )
            print(f"built {site / 'index.html'}")
            return 0
        if args.command == "i18n":
            from .book import update_catalogs

            for line in update_catalogs(root):
                print(line)
            return 0
    except (ChapterError, ParameterError, DataError) as exc:
        print(f"dlnotes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # nbclient's cell task ends with the interrupt too; unawaited, asyncio would print its
        # whole traceback at exit, under the line that says what happened.
        import logging

        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("dlnotes: interrupted; existing reports are unchanged", file=sys.stderr)
        return 130
    return 1


def _run(root: Path, args) -> int:
    from .chapter import Chapter, list_chapters
    from .execute import describe_chapters, preflight, run_chapter
    from .parallel import ChapterJob

    if args.list and (args.chapter or args.all):
        print("dlnotes run: --list takes no chapter", file=sys.stderr)
        return 2
    if args.list:
        print(describe_chapters(root))
        return 0
    if args.all and args.chapter:
        print("dlnotes run: give chapters or --all, not both", file=sys.stderr)
        return 2
    names = list_chapters(root) if args.all else [Chapter(root, c).name for c in args.chapter]
    if not names:
        print("dlnotes run: name a chapter, or use --list to see them", file=sys.stderr)
        return 2
    given = [name for name, _ in args.param]
    repeated = sorted({n for n in given if given.count(n) > 1})
    twice = sorted({n for n in names if names.count(n) > 1})
    if repeated or twice:
        what, kind = (f"-p {', '.join(repeated)}", "parameter") if repeated else (
            f"chapter {', '.join(twice)}", "chapter")  # fmt: skip
        print(f"dlnotes run: {what} given more than once; give each {kind} once", file=sys.stderr)
        return 2
    from .dry import DEFAULT_STEPS, format_estimate

    if args.steps is not None and not (args.dry_run or args.estimate):
        print("dlnotes run: --steps is for a dry run; add --dry-run or --estimate",
              file=sys.stderr)  # fmt: skip
        return 2
    dry_run = None  # a real run; --steps below 1 is refused with the other inputs (preflight)
    if args.dry_run or args.estimate:
        dry_run = DEFAULT_STEPS if args.steps is None else args.steps
    parallel = _parallel_settings(root, args)
    if len(names) == 1 and parallel is None and args.output_dir is None:
        result = run_chapter(
            root,
            Chapter(root, names[0]),
            profile=args.profile,
            overrides=dict(args.param),
            device=args.device,
            output=args.output,
            progress=not args.no_progress,
            cell_timeout=args.cell_timeout,
            dry_run=dry_run,
            max_epochs=args.max_epochs,
        )
        what = "placeholder metrics, dry run" if dry_run else "metrics"
        print(
            f"{result.chapter}: {result.report} ({result.seconds:.1f} s, "
            f"{len(result.metrics)} {what})"
        )
        if args.estimate:
            print(format_estimate(result.chapter, args.profile or "the default profile",
                                  _device_words(result.report), result.estimate))  # fmt: skip
        return 0
    if args.output is not None:
        print("dlnotes run: --output names one report; use --output-dir for several chapters",
              file=sys.stderr)  # fmt: skip
        return 2
    jobs = []
    for name in names:
        chapter = Chapter(root, name)
        output = args.output_dir / chapter.report.name if args.output_dir else None
        # Every chapter's input is checked here, before any worker starts.
        preflight(chapter, profile=args.profile, overrides=dict(args.param), device=args.device,
                  output=output, cell_timeout=args.cell_timeout, dry_run=dry_run,
                  max_epochs=args.max_epochs)  # fmt: skip
        jobs.append(ChapterJob(str(root), name, args.profile, dict(args.param), args.device,
                               str(output) if output else None, args.cell_timeout,
                               dry_run=dry_run, max_epochs=args.max_epochs))  # fmt: skip
    return _run_parallel(root, jobs, parallel or {"workers": 1, "executor": "local"},
                         estimate=args.estimate, profile=args.profile)  # fmt: skip


def _device_words(report: Path) -> str:
    """Return the device a report ran on, as its provenance says."""
    import nbformat

    return nbformat.read(report, as_version=4).metadata.get("dlnotes", {}).get("device", "?")


def _parallel_settings(root: Path, args) -> dict | None:
    """Return the parallel settings the options ask for, or None for a plain sequential run."""
    from .chapter import ChapterError

    if args.jobs < 1:
        raise ChapterError(f"--jobs must be at least 1, got {args.jobs}")
    if args.gpus_per_job < 0 or args.time < 1:
        raise ChapterError("--gpus-per-job must be 0 or more and --time at least 1 minute")
    if args.executor != "slurm" and args.partition:
        raise ChapterError("--partition is a Slurm option: add --executor slurm")
    if args.jobs == 1 and args.executor is None:
        return None
    return {"workers": args.jobs, "executor": args.executor or "local",
            "partition": args.partition, "gpus_per_job": args.gpus_per_job,
            "time_min": args.time, "folder": root / "build" / "jobs"}  # fmt: skip


def _run_parallel(root: Path, jobs, settings: dict, *, estimate=False, profile=None) -> int:
    from .dry import format_estimate
    from .parallel import run_jobs, summary_table

    settings = {"folder": root / "build" / "jobs", **settings}
    outcomes = run_jobs(jobs, **settings)
    print(summary_table(outcomes))
    for o in outcomes if estimate else ():
        if o.status == "ok" and o.estimate:
            words = _device_words(Path(o.report))
            print(format_estimate(o.chapter, profile or "the default profile", words, o.estimate))
    if any(o.status == "interrupted" for o in outcomes):
        return 130
    return 0 if all(o.status == "ok" for o in outcomes) else 2


def _data(args) -> int:
    from ..data import REGISTRY, cache_dir, fetch, mirror_base, verify_cache
    from .datasets import dataset_lock

    if args.data_command == "list":
        for d in REGISTRY.values():
            where = f"mirror: {d.mirror_path}/" if d.mirror_path else "official URL only"
            print(f"{d.name:26} {d.title} [{where}]")
        return 0
    if args.data_command == "verify":
        # Every dataset's lock: a run preparing one must not see its files removed midway.
        with contextlib.ExitStack() as held:
            for name in REGISTRY:
                if (cache_dir() / name).is_dir():  # nothing to check: no lock to take
                    held.enter_context(dataset_lock(name, cache_dir()))
            lines = verify_cache()
        print("\n".join(lines) if lines else f"nothing cached in {cache_dir()}")
        return 1 if any(line.startswith("damaged") for line in lines) else 0
    names = list(args.names)
    if args.all:
        names = [d.name for d in REGISTRY.values() if d.mirror_path or not mirror_base()]
    if not names:
        print(
            "dlnotes data fetch: name datasets (see `dlnotes data list`) or use --all",
            file=sys.stderr,
        )
        return 2
    for name in names:
        with dataset_lock(name, cache_dir()):  # the lock a chapter run prepares it under
            print(f"{name}: {fetch(name, allow_unverified=args.allow_unverified)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
