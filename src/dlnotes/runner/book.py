"""Build the bilingual site: re-execute stale chapters, then Jupyter Book 1 once per language."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

from ..files import write_atomic
from .chapter import Chapter, ChapterError, list_chapters
from .execute import run_chapter
from .explorers import explorer_blocks
from .parallel import ChapterJob, run_jobs, summary_table

__all__ = [
    "LANGUAGES",
    "build_book",
    "build_language",
    "page_weight",
    "update_catalogs",
    "write_root_index",
]

# Sphinx language code → folder of the site. English is the source language of the prose.
LANGUAGES = {"en": "en", "zh_CN": "zh"}


_LOCAL_SRC = re.compile(r'<(?:img|source)\b[^>]*\bsrc="([^":#?]+)"')


def page_weight(page: Path) -> dict[str, int]:
    """Bytes a reader loads for one built page, beyond what the site serves once for every page
    (theme, fonts, MathJax, the Vega bundle): the HTML itself (figures inlined as data URIs
    included), the images it links from the site's ``_images/``, and of the HTML, the explorers'
    data."""
    text = page.read_text(encoding="utf-8")
    linked = {page.parent / unquote(src) for src in _LOCAL_SRC.findall(text)}
    images = sum(p.stat().st_size for p in linked if p.is_file())
    explorers = sum(len(m.group(2).encode("utf-8")) for m in explorer_blocks(text))
    html_bytes = len(text.encode("utf-8"))
    return {"total": html_bytes + images, "html": html_bytes, "images": images,
            "explorers": explorers}  # fmt: skip


def build_language(book: Path, out: Path, language: str, *, builder: str = "html") -> None:
    """Build ``book`` in ``language`` into ``out`` with Jupyter Book 1, Sphinx warnings as errors."""
    from jupyter_book.sphinx import build_sphinx

    overrides = {
        "external_toc_path": str(book / "_toc.yml"),
        "latex_individualpages": False,
        "language": language,
        "html_search_language": language.split("_")[0],
    }
    if language.startswith("zh"):
        # jieba splits 激活函数 into 激活 + 函数 and indexes no compound; the book's terms go into
        # its dictionary so that a reader searching a chapter's title term finds the chapter.
        overrides["html_search_options"] = {"dict": str(book / "zh_terms.txt")}
    doctrees = out.parent / f".doctrees-{builder}-{language}"
    result = build_sphinx(
        book,
        out,
        noconfig=True,
        path_config=str(book / "_config.yml"),
        confoverrides=overrides,
        doctreedir=doctrees,
        builder=builder,
        warningiserror=True,
        keep_going=True,
        freshenv=True,
        quiet=True,
    )
    if result != 0:
        raise ChapterError(
            f"the {language} {builder} build of {book} failed ({result!r}); "
            "the Sphinx warnings above say where"
        )


def write_root_index(site: Path, languages) -> Path:
    """Write the site's root page, which links each language's book."""
    names = {"en": "English", "zh_CN": "简体中文"}
    links = "\n".join(
        f'<li><a href="{LANGUAGES[lang]}/index.html" hreflang="{lang.replace("_", "-")}">'
        f"{html.escape(names[lang])}</a></li>"
        for lang in languages
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dlnotes</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;line-height:1.5}}
li{{font-size:1.3rem;margin:.4rem 0}}</style></head>
<body><h1>dlnotes</h1>
<p>Executable deep-learning reports · 可执行的深度学习实验报告</p>
<ul>
{links}
</ul></body></html>
"""
    write_atomic(site / "index.html", page)
    return site / "index.html"


def build_book(
    root: Path,
    *,
    output: Path | None = None,
    execute: bool = True,
    profile: str | None = None,
    languages=None,
    parallel: dict | None = None,
) -> Path:
    """Bring every report up to date, then build the site; return the site folder.

    A chapter whose code changed is re-executed with the profile and parameters its report was
    made with (a page run at ``full`` stays at ``full``), or at ``profile`` alone when one is
    given; a missing report is executed at ``profile`` or ``quick``. A chapter whose prose alone
    changed gets the new prose without re-execution. ``parallel`` (``workers``, ``executor``
    and the Slurm options of :func:`dlnotes.runner.parallel.run_jobs`) runs the stale chapters
    as parallel jobs; the site is built only when every one succeeded.
    """
    book = root / "book"
    stale = []
    for name in list_chapters(root):
        chapter = Chapter(root, name)
        reasons = chapter.staleness()
        why = "; ".join(reasons)
        if reasons and not execute:
            raise ChapterError(
                f"the report of {name} is out of date ({why}): run `dlnotes run {name}` or drop "
                "--no-execute"
            )
        if reasons:
            if profile is not None:
                chosen, overrides = profile, {}
            else:
                recorded, overrides = chapter.recorded_settings()
                chosen = recorded or "quick"
            shown = "".join(f" -p {k} {v}" for k, v in overrides.items())
            print(f"{name}: re-executing at profile {chosen}{shown}, because: {why}")
            if parallel is None:
                run_chapter(root, chapter, profile=chosen, overrides=overrides)
            else:
                stale.append(ChapterJob(str(root), name, chosen, dict(overrides)))
        elif chapter.refresh():
            print(f"{name}: text refreshed from the source (same code, outputs kept)")
    if stale:
        outcomes = run_jobs(stale, **{"folder": root / "build" / "jobs", **parallel})
        print(summary_table(outcomes))
        failed = [o.chapter for o in outcomes if o.status != "ok"]
        if failed:
            raise ChapterError(
                f"not built: {', '.join(failed)} did not finish (above); their old reports are "
                "unchanged, the others are installed"
            )
    site = Path(output) if output else book / "_build" / "site"
    languages = languages or list(LANGUAGES)
    for language in languages:
        target = site / LANGUAGES[language]
        if target.exists():
            shutil.rmtree(target)
        print(f"building the {language} site in {target}")
        build_language(book, target, language)
    write_root_index(site, languages)
    return site


def update_catalogs(root: Path) -> list[str]:
    """Extract the book's messages and update the zh_CN catalogs; return sphinx-intl's report.

    Reports whose code is current get the source's prose first, so that edited English is what
    gets extracted; a stale report is left alone and named (run the chapter to refresh it).
    """
    from sphinx_intl import basic

    lines = []
    for name in list_chapters(root):
        chapter = Chapter(root, name)
        if chapter.staleness():
            lines.append(
                f"{name}: report out of date, its old prose extracted (dlnotes run {name})"
            )
        elif chapter.refresh():
            lines.append(f"{name}: text copied from notebooks/{name}.py into the report")
    book = root / "book"
    pot = root / "build" / "gettext"
    build_language(book, pot, "en", builder="gettext")
    basic.update(str(book / "locales"), str(pot), ("zh_CN",))
    return [*lines, f"updated catalogs in {book / 'locales'} from {pot}"]
