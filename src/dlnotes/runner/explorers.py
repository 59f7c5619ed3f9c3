"""The chapters' explorers on the static pages: Vega served once by the site, words translated.

A chapter's explorer is an HTML output made by ``dlnotes.explore.show``: a Vega-Lite spec in a JSON
script, inside ``div.dlnotes-explorer``. This part of the Sphinx extension

- writes the Vega, Vega-Lite and vega-embed scripts into the site's ``_static/`` once (the bundle
  ``vl-convert-python`` ships, the one Altair inlines for offline HTML; nothing from a CDN) and
  loads them, with ``static/dlnotes-explore.js``, only on pages that have an explorer;
- adds each explorer's words (its spec's ``usermeta``) to the page's message catalog in the
  gettext build, and replaces them from the catalog in a translated HTML build: exact strings
  (titles, control names, labels, axis titles) and quoted strings inside Vega expressions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes

from ..explore import JUPYTER_MIME, messages
from .tables import add_unseen_messages, page_gettext

__all__ = ["explorer_blocks", "explorer_specs", "translate_spec", "setup", "VEGA_JS", "JupyterView"]

VEGA_JS = "dlnotes-vega.js"  # Vega, Vega-Lite and vega-embed in one script (vl-convert's bundle)
_BLOCK = re.compile(
    r'(<div class="dlnotes-explorer">.*?<script type="application/json">)(.*?)(</script>)', re.S
)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")  # a single-quoted string in a Vega expression


class JupyterView:
    """myst-nb mime plugin: the Vega-Lite copy of an explorer is for Jupyter; the page draws
    the HTML copy beside it. Without this, myst-nb warns on the unknown type (warnings fail the
    build) while it renders every type of an output before it picks one."""

    mime_priority_overrides = ()

    @staticmethod
    def handle_mime(renderer, data, inline):
        return [] if data.mime_type == JUPYTER_MIME else None


def explorer_blocks(raw: str):
    """The explorers of one HTML output, as matches: group 2 is each one's JSON spec."""
    return _BLOCK.finditer(raw)


def explorer_specs(raw: str) -> list[dict]:
    """Return the specs of the explorers in one HTML output."""
    return [json.loads(m.group(2).replace("<\\/", "</")) for m in explorer_blocks(raw)]


def translate_spec(spec: dict, gettext) -> tuple[dict, int]:
    """Return the spec with its words translated by ``gettext``; and how many strings changed.

    Translated: titles, control names and labels, quoted strings in Vega expressions, and the
    data columns and parameters the spec's ``usermeta`` names as words (a curve's series, a
    group that a menu filters by, with the menu's options). Field names, other data and option
    values stay: the filters still find their rows.
    """
    meta = spec.get("usermeta", {}).get("dlnotes", {})
    words = {m: gettext(m) for m in messages(spec)}
    words = {m: t for m, t in words.items() if t and t != m}
    if not words:
        return spec, 0
    columns, params = set(meta.get("columns", ())), set(meta.get("params", ()))
    changed = 0

    def word(text):
        nonlocal changed
        if isinstance(text, str):
            core = text.rstrip()  # a control's name keeps its space before the control
            if core in words:
                changed += 1
                return words[core] + text[len(core) :]
        return text

    def quoted(match):
        nonlocal changed
        text = json.loads('"' + match.group(1).replace("\\'", "'") + '"')
        if text not in words:
            return match.group(0)
        changed += 1
        return json.dumps(words[text], ensure_ascii=False).replace("'", "\\'")[1:-1].join("''")

    def walk(value, key=None):
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str):
            if key in ("title", "text", "subtitle"):
                return word(value)
            if key in ("calculate", "filter", "expr", "test", "labelExpr"):
                return _QUOTED.sub(quoted, value)
            return value
        if not isinstance(value, dict):
            return value
        out = {}
        for k, v in value.items():
            if k in ("usermeta", "datasets"):
                out[k] = v
            elif k == "params":
                out[k] = [param(p) for p in v]
            elif k == "domain" and isinstance(v, list) and columns:
                out[k] = [word(x) for x in v]  # a scale over a column of words: its values too
            elif k == "bind" and isinstance(v, dict):
                out[k] = {**v, "name": word(v.get("name"))}
                if "labels" in v:
                    out[k]["labels"] = [word(x) for x in v["labels"]]
            else:
                out[k] = walk(v, k)
        return out

    def param(p):
        p = walk(p, "param")
        if p.get("name") in params:  # a menu over a column of words: options and start too
            p["value"] = word(p.get("value"))
            if "options" in p.get("bind", {}):
                p["bind"]["options"] = [word(o) for o in p["bind"]["options"]]
        return p

    result = walk(spec)
    if "datasets" in spec:
        result["datasets"] = {
            name: [{c: (word(v) if c in columns else v) for c, v in row.items()} for row in rows]
            for name, rows in spec["datasets"].items()
        }
    return result, changed


def _outputs(doctree):
    for node in doctree.findall(nodes.raw):
        if node.get("format") == "html" and 'class="dlnotes-explorer"' in node.astext():
            yield node


def _extract(app, doctree, docname) -> None:
    """gettext build: add the explorers' words to the page's catalog."""
    found = ((m, node) for node in _outputs(doctree)
             for spec in explorer_specs(node.astext()) for m in messages(spec))  # fmt: skip
    add_unseen_messages(app, doctree, docname, found, "dlnotes-explorer-messages")


def _translate(app, doctree, docname) -> None:
    """Translated html build: the explorers' words from the page's catalog."""
    gettext = page_gettext(app, docname)
    if gettext is None:
        return

    def swap(match):
        spec, _ = translate_spec(json.loads(match.group(2).replace("<\\/", "</")), gettext)
        data = json.dumps(spec, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
        return match.group(1) + data + match.group(3)

    for node in list(_outputs(doctree)):
        node[:] = [nodes.Text(_BLOCK.sub(swap, node.astext()))]


def _write_vega(app) -> None:
    """Put the Vega bundle into a static folder of the build (once per build, not per page)."""
    if app.builder.format != "html":
        return
    import vl_convert

    folder = Path(app.doctreedir) / "dlnotes-static"  # beside the doctrees, not in the site
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / VEGA_JS
    # The bundle declares its helpers at the top level (``const _`` …), which would collide with
    # the page's own scripts (underscore.js): a function scope keeps them to it. It publishes
    # ``window.vegaEmbed``, ``window.vega`` and ``window.vegaLite`` itself.
    bundle = f"(function () {{\n{vl_convert.javascript_bundle()}\n}})();\n"
    if not target.exists() or target.read_text(encoding="utf-8") != bundle:
        target.write_text(bundle, encoding="utf-8")
    app.config.html_static_path = [*app.config.html_static_path, str(folder)]


def _load_on_pages_with_explorers(app, pagename, templatename, context, doctree) -> None:
    if doctree is not None and any(True for _ in _outputs(doctree)):
        app.add_js_file(VEGA_JS)
        app.add_js_file("dlnotes-explore.js")


def setup(app):
    """Register the hooks (called from ``dlnotes.runner.sphinxext.setup``)."""
    app.connect("builder-inited", _write_vega)
    app.connect("doctree-resolved", _extract)
    app.connect("doctree-resolved", _translate)
    app.connect("html-page-context", _load_on_pages_with_explorers)
