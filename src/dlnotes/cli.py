"""The ``dlnotes`` command: run chapters, build the book, update translations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlnotes", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a chapter with papermill and write its report")
    run.add_argument("chapter", nargs="?", help="chapter name, e.g. 07_activations (or 07)")
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
    run.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"], help="device (default auto)"
    )
    run.add_argument(
        "--output", type=Path, help="report path (default book/chapters/NN_slug.ipynb)"
    )
    run.add_argument(
        "--no-progress", action="store_true", help="hide papermill's cell progress bar"
    )

    book = sub.add_parser(
        "book", help="re-execute stale chapters, then build the site in both languages"
    )
    book.add_argument(
        "--no-execute",
        action="store_true",
        help="render the existing reports only; fail if one is missing or stale",
    )
    book.add_argument(
        "--profile",
        default="quick",
        choices=["smoke", "quick", "full"],
        help="profile for chapters that must be re-executed (default quick)",
    )
    book.add_argument("--output", type=Path, help="site folder (default book/_build/site)")
    book.add_argument(
        "--language",
        action="append",
        choices=["en", "zh_CN"],
        help="build only this language (repeatable; default both)",
    )

    sub.add_parser("i18n", help="extract messages and update the zh_CN catalogs (sphinx-intl)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dlnotes`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    from .params import ParameterError
    from .run import ChapterError, find_root

    try:
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
            )
            print(f"built {site / 'index.html'}")
            return 0
        if args.command == "i18n":
            from .book import update_catalogs

            for line in update_catalogs(root):
                print(line)
            return 0
    except (ChapterError, ParameterError) as exc:
        print(f"dlnotes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlnotes: interrupted; existing reports are unchanged", file=sys.stderr)
        return 130
    return 1


def _run(root: Path, args) -> int:
    from .run import describe_chapters, resolve_chapter, run_chapter

    if args.list:
        print(describe_chapters(root))
        return 0
    if not args.chapter:
        print("dlnotes run: name a chapter, or use --list to see them", file=sys.stderr)
        return 2
    chapter = resolve_chapter(root, args.chapter)
    result = run_chapter(
        root,
        chapter,
        profile=args.profile,
        overrides=dict(args.param),
        device=args.device,
        output=args.output,
        progress=not args.no_progress,
    )
    print(
        f"{result.chapter}: {result.report} ({result.seconds:.1f} s, {len(result.metrics)} metrics)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
