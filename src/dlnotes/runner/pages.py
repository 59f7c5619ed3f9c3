"""What the static pages show of a chapter's machinery: the lesson first.

Doctree hooks for the html builders (registered by ``dlnotes.runner.sphinxext``): papermill's
injected-parameters cell goes, a one-line banner under the title gives the provenance (profile,
device, torch, date, duration), the parameters, profile and import cells fold behind a toggle
(outputs stay), widget views and CDN links go, and scripts added twice are added once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

__all__ = [
    "setup",
    "banner_text",
    "drop_widget_views",
    "drop_cdn_links",
    "FoldMachinery",
    "drop_foreign_notebook",
]

_PROMPTS = {"en": ("Show code", "Hide code"), "zh_CN": ("显示代码", "隐藏代码")}


def _is_machinery(source: str, tags) -> bool:
    """Return True for the cells a reader can skip: parameters, the profile table and its
    resolution (the cell that calls ``check_injected``), imports."""
    if "parameters" in tags or re.search(r"^(PROFILES = \{|check_injected\()", source, re.M):
        return True
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    imports = [ln for ln in lines if re.match(r"\s*(import |from \S+ import |\)|\s+\w+,$)", ln)]
    return bool(lines) and len(imports) >= 0.6 * len(lines)


class FoldMachinery(SphinxPostTransform):
    """Fold the input of machinery cells and remove papermill's injected-parameters cell.

    Runs before myst-nb's own ``HideInputCells`` (priority 199), which then renders the fold.
    """

    default_priority = 150
    formats = ("html",)

    def run(self, **kwargs):
        show, hide = _PROMPTS.get(self.config.language or "en", _PROMPTS["en"])
        for node in list(self.document.findall(nodes.container)):
            if node.get("nb_element") != "cell_code":
                continue
            tags = node.get("cell_metadata", {}).get("tags", [])
            if "injected-parameters" in tags:
                node.parent.remove(node)
                continue
            source = node.children[0].astext() if node.children else ""
            if not node.get("hide_mode") and _is_machinery(source, tags):
                node["hide_mode"] = "input"
            if node.get("hide_mode") == "input":  # by us or by a tag: in the page's language
                node["prompt_show"], node["prompt_hide"] = show, hide


def _machine_text(machine: dict | None, device: str, language: str) -> str:
    """The CPU and its bf16 verdict from a report's "machine" record ("" for reports run before
    it was recorded): e.g. "AMD EPYC 25/1, AVX2, no fast bf16". On a GPU only the verdict."""
    if not machine:
        return ""
    fast = machine.get("bf16_autocast")
    verdict = {("en", True): "fast bf16", ("en", False): "no fast bf16",
               ("zh_CN", True): "bf16 有硬件加速", ("zh_CN", False): "bf16 无硬件加速"}  # fmt: skip
    words = [verdict[("zh_CN" if language == "zh_CN" else "en", bool(fast))]]
    if device.startswith("cpu"):
        cpu = machine.get("cpu") or {}
        name = " ".join(p for p in (cpu.get("model"), cpu.get("family/model")) if p)
        words[:0] = [p for p in (name, machine.get("cpu_capability")) if p]
    return ", ".join(words)


def banner_text(meta: dict, language: str) -> str:
    """Return the provenance banner: profile · device · torch · date · duration."""
    device, _, torch = str(meta.get("device", "")).partition(", torch ")
    # env.describe_device writes "1 threads"; fixed there with the chapters' next re-execution.
    device = device.replace("(1 threads)", "(1 thread)")
    seconds = float(meta.get("duration_s") or 0)
    minutes, rest = divmod(round(seconds), 60)
    date = str(meta.get("started", ""))[:10]
    chip = _machine_text(meta.get("machine"), device, language)
    if language == "zh_CN":
        device = re.sub(r" threads?\)", " 线程）", device).replace(" (", "（")
        took = f"{minutes} 分 {rest} 秒" if minutes else f"{rest} 秒"
        profile, took = f"配置 {meta.get('profile')}", f"用时 {took}"
        parts = [profile, device, chip, f"torch {torch}", date, took]
    else:
        took = f"{minutes} min {rest} s" if minutes else f"{rest} s"
        parts = [f"profile {meta.get('profile')}", device, chip, f"torch {torch}", date, took]
    return " · ".join(p for p in parts if p and not p.endswith(" "))


def add_banner(app, doctree, docname) -> bool:
    """Put the report's provenance under the page title; return True when a banner was added."""
    if app.builder.format != "html":
        return False
    source = Path(app.env.doc2path(docname))
    if source.suffix != ".ipynb":
        return False
    meta = json.loads(source.read_text(encoding="utf-8")).get("metadata", {}).get("dlnotes")
    section = next(iter(doctree.findall(nodes.section)), None)
    if not meta or section is None or not isinstance(section.children[0], nodes.title):
        return False
    text = banner_text(meta, app.config.language or "en")
    html = (
        f'<p class="dlnotes-banner" style="color:#666;font-size:.9em;margin-top:-.5em">{text}</p>'
    )
    section.insert(1, nodes.raw("", html, format="html"))
    return True


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widget_views(app, doctree, docname) -> int:
    """Remove ipywidgets views from the static pages; return how many were removed.

    Without a kernel their Python callbacks never run, and without a widget manager (the only
    one myst-nb offers comes from a CDN, so the book loads none) a view draws nothing but a blank
    strip. Each chapter shows a static fallback of its explorer instead. An output block left
    empty is removed with its view.
    """
    removed = 0
    for node in list(doctree.findall(nodes.raw)):
        if WIDGET_VIEW not in node.astext():
            continue
        parent = node.parent
        parent.remove(node)
        removed += 1
        while parent is not None and not parent.children and parent.parent is not None:
            grand = parent.parent
            grand.remove(parent)
            if "cell_output" in parent.get("classes", []):
                break
            parent = grand
    return removed


# matplotlib's to_jshtml links Font Awesome 4 from a CDN for its buttons; the book's theme already
# serves Font Awesome 6 (with the version-4 names) from the site and draws those icons itself.
_FONT_AWESOME_CDN = re.compile(
    r"<link[^>]+href=\"https?://[^\"]*font-awesome[^\"]*\"[^>]*>\s*", re.S
)


def drop_cdn_links(app, doctree, docname) -> int:
    """Remove the Font Awesome CDN link from raw HTML outputs; return how many were removed."""
    removed = 0
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        cleaned, n = _FONT_AWESOME_CDN.subn("", text)
        if n:
            node.replace_self(nodes.raw("", cleaned, format=node.get("format", "html")))
            removed += n
    return removed


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    # jupyter-book registers sphinx-thebe's and sphinx-togglebutton's inline scripts twice (once
    # with filename None, once with ""); the second THEBE_JS_URL is a "has already been declared"
    # error in every page's console.
    seen, kept = set(), []
    for script in context.get("script_files", []):
        filename = getattr(script, "filename", script) or ""  # inline scripts: None or ""
        key = (str(filename), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"][:] = kept  # in place: later handlers append to the same list


def drop_foreign_notebook(app, pagename, templatename, context, doctree):
    """On a translated page, offer no notebook download: the notebook is the English one.

    The print-to-PDF entry stays; the English page offers the notebook.
    """
    if (app.config.language or "en") == "en":
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"] = [b for b in group["buttons"] if not str(b.get("url", "")).endswith(
                (".ipynb", ".md", ".py"))]  # fmt: skip


def setup(app):
    """Register the page hooks (called from ``dlnotes.runner.sphinxext.setup``)."""
    app.add_post_transform(FoldMachinery)
    app.connect("doctree-resolved", add_banner)
    app.connect("doctree-resolved", drop_widget_views)
    app.connect("doctree-resolved", drop_cdn_links)
    # Early: html-page-context stops at the first handler that returns a template name.
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    # After the book theme's header buttons (priority 501).
    app.connect("html-page-context", drop_foreign_notebook, priority=600)
