"""The words in the chapters' result tables, translated like the prose.

A chapter's tables are HTML outputs (pandas), made once, in English, by the kernel; Sphinx's
gettext sees raw HTML as a literal and extracts nothing from it. So the gettext build adds each
header, caption and word-bearing cell of those tables to the page's catalog, and a translated html
build replaces them from that catalog. Numbers inside a text become ``{0}``, ``{1}`` … in the
message (``fits (4 of 5)`` → ``fits ({0} of {1})``), so one message covers every run's numbers;
the translation places them where its language wants them.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from docutils import nodes

__all__ = [
    "template",
    "fill",
    "table_messages",
    "translate_tables",
    "add_unseen_messages",
    "page_gettext",
    "setup",
]

# A header, caption or data cell whose content is plain text (no markup inside).
_CELL = re.compile(r"(<(th|td|caption)\b[^>]*>)([^<]*)(</\2>)")
# A number standing on its own: not a part of a name such as LeNet-5, fc1 or 1e-4.
_NUMBER = re.compile(r"(?<![\w.\-−])[-+−]?\d(?:[\d,.]*\d)?%?(?!\w)")
# A name from the code (LeNet-5, exp_cos, d128-h8-l1-scaled, F.scaled_dot_product_attention):
# one token with a digit, an underscore, a dot or a call's bracket in it. It stays as it is.
_NAME = re.compile(r"^\S*(?:[\d_.]|\w\()\S*$")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_WORD = re.compile(r"[^\W\d_]{2}")  # two letters in a row: a word, not a number or a symbol


def template(text: str) -> tuple[str, list[str]]:
    """Return (message, numbers): the text with its numbers replaced by {0}, {1} …"""
    numbers: list[str] = []

    def hole(match):
        numbers.append(match.group(0))
        return f"{{{len(numbers) - 1}}}"

    # A brace of the text itself would read as a placeholder: such a text is not templated.
    if "{" in text or "}" in text:
        return text, []
    return _NUMBER.sub(hole, text), numbers


def fill(message: str, numbers: list[str]) -> str:
    """Put the numbers back into a (translated) message."""
    return _PLACEHOLDER.sub(lambda m: numbers[int(m.group(1))], message)


_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def _texts(raw: str):
    # A table inside a script is data for JavaScript (escaped, and not what the page shows).
    scripts = [m.span() for m in _SCRIPT.finditer(raw)]
    for match in _CELL.finditer(raw):
        if any(a <= match.start() < b for a, b in scripts):
            continue
        text = html.unescape(match.group(3)).strip()
        if _WORD.search(text) and not _NAME.match(text):
            yield match, text


def table_messages(raw: str) -> list[str]:
    """Return the messages of the tables in one HTML output, in order, each once."""
    if "<table" not in raw:
        return []
    return list(dict.fromkeys(template(text)[0] for _, text in _texts(raw)))


def translate_tables(raw: str, gettext) -> tuple[str, int]:
    """Return the HTML with every cell whose message ``gettext`` translates replaced; and how many."""
    if "<table" not in raw:
        return raw, 0
    pieces, end, changed = [], 0, 0
    for match, text in _texts(raw):
        message, numbers = template(text)
        translated = gettext(message)
        if translated == message:
            continue
        pieces += [raw[end : match.start(3)], html.escape(fill(translated, numbers), quote=False)]
        end = match.end(3)
        changed += 1
    return "".join(pieces) + raw[end:], changed


def _table_outputs(doctree):
    for node in doctree.findall(nodes.raw):
        if node.get("format") == "html" and "<table" in node.astext():
            yield node


def add_unseen_messages(app, doctree, docname, messages, css_class: str) -> None:
    """gettext build: add ``messages`` (an iterable of (message, node)) to the page's catalog,
    as paragraphs nobody sees. Used for words that live inside HTML outputs."""
    if app.builder.name != "gettext":
        return
    source = doctree.get("source") or app.env.doc2path(docname)
    holder, seen = nodes.container(classes=[css_class]), set()
    for message, node in messages:
        if message not in seen:
            seen.add(message)
            paragraph = nodes.paragraph(message, message)
            paragraph.source, paragraph.line = source, node.line or 1
            paragraph.uid = ""  # the gettext builder adds only nodes with a uid (read-time)
            holder += paragraph
    if seen:
        doctree += holder


def page_gettext(app, docname):
    """Translated html build: the ``gettext`` of the page's catalog; None in English, in other
    builders, or where the page has no catalog."""
    if app.builder.format != "html" or (app.config.language or "en") == "en":
        return None
    from sphinx.locale import init as init_locale
    from sphinx.util.i18n import docname_to_domain

    dirs = [str(Path(app.srcdir) / d) for d in app.config.locale_dirs]
    domain = docname_to_domain(docname, app.config.gettext_compact)
    catalog, found = init_locale(dirs, app.config.language, domain)
    return catalog.gettext if found else None


def _extract(app, doctree, docname) -> None:
    """gettext build: add the tables' messages to the page's catalog."""
    found = ((m, node) for node in _table_outputs(doctree) for m in table_messages(node.astext()))
    add_unseen_messages(app, doctree, docname, found, "dlnotes-table-messages")


def _translate(app, doctree, docname) -> None:
    """Translated html build: replace the tables' words from the page's catalog."""
    gettext = page_gettext(app, docname)
    if gettext is None:
        return
    for node in list(_table_outputs(doctree)):
        translated, changed = translate_tables(node.astext(), gettext)
        if changed:
            node[:] = [nodes.Text(translated)]


def setup(app):
    """Register the hooks (called from ``dlnotes.runner.sphinxext.setup``)."""
    app.connect("doctree-resolved", _extract)
    app.connect("doctree-resolved", _translate)
