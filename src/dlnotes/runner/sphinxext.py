"""Sphinx extension for the book: a link to the other language on every page (it keeps the
reader's section), the overview table built from every chapter's metrics JSON beside the lab
reports' numbers, and the book's CSS and JavaScript (``static/``: one table style, print).

Enabled in ``book/_config.yml`` (``sphinx.extra_extensions``).
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from . import explorers, images, pages, tables

__all__ = [
    "setup",
    "twin_link",
    "OverviewTable",
    "DatasetTable",
    "BenchTables",
    "bench_rows",
]

# The language a page is in → (folder of the other language, label of the link, its lang tag).
_TWIN = {"en": ("zh", "中文", "zh-CN"), "zh_CN": ("en", "English", "en")}

_HEADERS = {
    "en": [
        "Chapter",
        "Quantity",
        "Lab report",
        "Ours",
        "Scale: report → this run",
        "Profile, device",
    ],
    "zh_CN": ["章节", "指标", "实验报告", "本书", "规模：报告 → 本次运行", "配置与设备"],
}
_MISSING = {"en": "not run yet", "zh_CN": "尚未运行"}
_SAME_SCALE = {"en": "the report's", "zh_CN": "与报告相同"}
_OF = {"en": "{} of {}", "zh_CN": "{}（共 {}）"}


def twin_link(pagename: str, language: str) -> str:
    """Return the HTML of the link from ``pagename`` to the same page in the other language."""
    folder, label, lang = _TWIN.get(language, _TWIN["en"])
    href = "../" * (pagename.count("/") + 1) + f"{folder}/{pagename}.html"
    return (
        f'<div class="dlnotes-lang-switch" style="text-align:right;font-size:.9em">'
        f'<a class="dlnotes-twin" href="{html.escape(href)}" hreflang="{lang}" lang="{lang}">'
        f"{label}</a></div>"
    )


def _add_twin_link(app, pagename, templatename, context, doctree):
    if doctree is not None and "body" in context:
        context["body"] = twin_link(pagename, app.config.language or "en") + context["body"]


def _format(value, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return format(value, fmt)


def scale_cell(names: list[str], report: dict, run: dict, language: str) -> tuple[str, bool]:
    """Return the scale column's text for parameters ``names`` and whether the run differs.

    ``report`` holds the values at the reports' scale (the chapter's ``full`` profile, else the
    parameter's default), ``run`` the values the report recorded.
    """

    def shown(value):
        return f"{value:,g}" if isinstance(value, (int, float)) else str(value)

    differ = [f"{n} {shown(report.get(n))} → {shown(run.get(n))}"
              for n in names if run.get(n) != report.get(n)]  # fmt: skip
    return ("; ".join(differ), True) if differ else (_SAME_SCALE[language], False)


class OverviewTable(SphinxDirective):
    """``{dlnotes-overview}`` with the path of the references YAML as its argument.

    One row per lab-report number: the chapter's title linked to the section it comes from, the
    quantity, the report's number, ours ("8 of 11" for counts), the scale (the parameters that
    size the experiment, the reports' value → this run's; a row whose run is at another scale is
    marked), and the run's profile and device.
    """

    required_arguments = 1

    def run(self):
        language = self.config.language if self.config.language in _HEADERS else "en"
        ref_path = Path(self.env.relfn2path(self.arguments[0], self.env.docname)[1])
        self.env.note_dependency(str(ref_path))
        rows = yaml.safe_load(ref_path.read_text(encoding="utf-8"))
        runs = {}  # chapter → its run, each report read once
        body, marks = [], []
        for row in rows:
            if row["chapter"] not in runs:
                runs[row["chapter"]] = self._run_of(row["chapter"], language)
            run = runs[row["chapter"]]
            fmt = row.get("format", ".3f")
            differs = False
            if run["metrics"] is not None:
                ours = _format(run["metrics"].get(row["ours"]), fmt)
                if row.get("of") is not None:
                    total = run["metrics"].get(row["of"], row["of"])
                    ours = _OF[language].format(ours, _format(total, "d"))
                meta = run["meta"]
                where = f"{meta.get('profile', '?')}, {meta.get('device', '?').split(',')[0]}"
                # A row may give the report's own scale where the chapter's `full` profile
                # is not it (06's √d study: 5 epochs a run, where the report trained 50).
                report_scale = run["report_scale"] | row.get("report_scale", {})
                scale, differs = scale_cell(row.get("scale", []), report_scale,
                                            meta.get("parameters", {}), language)  # fmt: skip
            else:
                ours, where, scale = _MISSING[language], "—", "—"
            label = row["label"][language] if isinstance(row["label"], dict) else row["label"]
            lab = _format(row.get("lab_report"), fmt)
            href = f"chapters/{row['chapter']}.html" + (f"#{row['section']}" if row.get("section")
                                                         else "")  # fmt: skip
            body.append([(run["title"], href), label, lab, ours, scale, where])
            marks.append(differs)
        table = _table(_HEADERS[language], body)
        for row_node, differs in zip(table.findall(nodes.row), [False, *marks], strict=True):
            if differs:
                row_node["classes"].append("dlnotes-scale-differs")
        return [table]

    def _run_of(self, chapter: str, language: str) -> dict:
        """Return a chapter's metrics (None when it has not run), its report's provenance, its
        title in ``language`` and its parameters at the reports' scale."""
        from ..spec import parse_parameters

        chapters = Path(self.env.srcdir) / "chapters"
        metrics_file = chapters / f"{chapter}.metrics.json"
        self.env.note_dependency(str(metrics_file))
        run = {"metrics": None, "meta": {}, "title": chapter, "report_scale": {}}
        if not metrics_file.exists():
            return run
        import nbformat

        report = nbformat.read(chapters / f"{chapter}.ipynb", as_version=4)
        spec = parse_parameters(report)
        full = spec.profiles.get("full", {})
        run["report_scale"] = {n: full.get(n, p.default) for n, p in spec.params.items()}
        run["metrics"] = json.loads(metrics_file.read_text())
        run["meta"] = report.metadata.get("dlnotes", {})
        heading = next((line[2:].strip() for c in report.cells if c.cell_type == "markdown"
                        for line in c.source.splitlines() if line.startswith("# ")), chapter)  # fmt: skip
        run["title"] = self._translated(chapter, heading, language)
        return run

    def _translated(self, chapter: str, text: str, language: str) -> str:
        """Return ``text`` from chapter ``chapter``'s message catalog for ``language``."""
        if language == "en":
            return text
        import gettext

        for folder in self.config.locale_dirs:
            mo = (
                Path(self.env.srcdir)
                / folder
                / language
                / "LC_MESSAGES"
                / "chapters"
                / f"{chapter}.mo"
            )
            if mo.exists():
                with open(mo, "rb") as f:
                    return gettext.GNUTranslations(f).gettext(text)
        return text


_DATA_WORDS = {
    "en": {"headers": ["Name", "Examples per split", "Mirror folder", "Licence"],
           "none": "official URL only", "differs": "Differs from the official set", "cite": "Cite"},
    "zh_CN": {"headers": ["名称", "各划分样本数", "镜像目录", "许可"],
              "none": "仅官方地址", "differs": "与官方版本的差异", "cite": "引用"},
}  # fmt: skip


class DatasetTable(SphinxDirective):
    """``{dlnotes-datasets}``: the registry as a table, then each dataset's note and citation."""

    def run(self):
        from ..data.registry import REGISTRY

        words = _DATA_WORDS.get(self.config.language, _DATA_WORDS["en"])
        rows = [
            [d.name, ", ".join(f"{k} {v:,}" for k, v in d.sizes.items()),
             f"{d.mirror_path}/" if d.mirror_path else words["none"], d.licence]
            for d in REGISTRY.values()
        ]  # fmt: skip
        details = nodes.bullet_list()
        for d in REGISTRY.values():
            item = nodes.paragraph()
            item += nodes.strong(text=d.name)
            item += nodes.Text(f" — {d.title}. ")
            if d.note:
                item += nodes.emphasis(text=f"{words['differs']}: ")
                item += nodes.Text(f"{d.note}. ")
            item += nodes.emphasis(text=f"{words['cite']}: ")
            item += nodes.Text(d.citation)
            details += nodes.list_item("", item)
        return [_table(words["headers"], rows), details]


_BENCH_WORDS = {
    "en": {"loops": ["Task", "Loop", "Batch", "Samples/s", "Speed-up", "Test acc.",
                     "Time to target (s)", "Peak memory (MiB)"],
           "speedrun": ["Run", "Seed", "Wall time (s)", "Test acc."],
           "lab": "lab-report style", "engine": "dlnotes engine",
           "engine-tuned": "dlnotes engine, larger batch",
           "mnist": "MNIST to 99%", "never": "not reached",
           "peers": ["Recipe", "Runs", "Median wall time (s)", "× {base}", "Mean test acc.",
                     "Lowest", "Runs at {target}"],
           "tuned": "× {base}, this machine's choices",
           "fast-mnist": "fast-MNIST (tuomaso)", "pytorch-examples": "pytorch/examples MNIST",
           "fast-mnist-tuned": "fast-MNIST, channels-last + bf16 where fast",
           "ours": "dlnotes speedrun", "airbench94": "airbench94 (Keller Jordan), on the CPU",
           "ours-cifar10": "dlnotes, chapter 02's speed recipe",
           "overhead": ["Model", "Batch", "Precision, layout", "Bare loop (samples/s)",
                        "Engine (samples/s)", "Engine / bare (median)", "Range"]},
    "zh_CN": {"loops": ["任务", "循环", "批大小", "样本/秒", "加速比", "测试准确率",
                        "达到目标用时（秒）", "峰值内存（MiB）"],
              "speedrun": ["任务", "随机种子", "总用时（秒）", "测试准确率"],
              "lab": "实验报告写法", "engine": "dlnotes 引擎",
              "engine-tuned": "dlnotes 引擎，更大批次",
              "mnist": "MNIST 达到 99%", "never": "未达到",
              "peers": ["配方", "运行次数", "总用时中位数（秒）", "相对 {base}", "平均测试准确率",
                        "最低", "达到 {target} 的次数"],
              "tuned": "相对 {base}（本机的选择）",
              "fast-mnist": "fast-MNIST（tuomaso）", "pytorch-examples": "pytorch/examples MNIST",
              "fast-mnist-tuned": "fast-MNIST，channels-last + 本机支持时用 bf16",
              "ours": "dlnotes 速通", "airbench94": "airbench94（Keller Jordan），在 CPU 上",
              "ours-cifar10": "dlnotes，第 02 章的速度配方",
              "overhead": ["模型", "批大小", "精度、内存布局", "裸循环（样本/秒）", "引擎（样本/秒）",
                           "引擎 / 裸循环（中位数）", "范围"]},
}  # fmt: skip


_BENCH_MISSING = {
    "en": "Not measured yet: run the benchmark on such a machine (see bench/README.md).",
    "zh_CN": "尚未测量：请在这类机器上运行基准测试（见 bench/README.md）。",
}


def bench_rows(result: dict, language: str = "en") -> list[tuple[list[str], list[list[str]]]]:
    """Return the benchmark result as (headers, rows) tables: the loop pairs and the speedruns,
    or, for a peers result (``bench/peers.py``), one row per recipe, or, for an overhead result
    (``bench/overhead.py``), one row per model."""
    words = _BENCH_WORDS.get(language, _BENCH_WORDS["en"])
    if result.get("kind") == "overhead":
        rows = [[r["model"], str(r["batch"]), f"{'bf16' if r['amp'] else 'fp32'}, {r['layout']}",
                 f"{r['bare_samples_per_s']:,.0f}", f"{r['engine_samples_per_s']:,.0f}",
                 f"{r['ratio_median']:.1%}",
                 f"{r['ratio_range'][0]:.0%}–{r['ratio_range'][1]:.0%}"]
                for r in result["runs"]]  # fmt: skip
        return [(words["overhead"], rows)]
    if "summary" in result:
        summary = result["summary"]
        name, label = {"mnist": ("fast-mnist", "fast-MNIST"),
                       "cifar10": ("airbench94", "airbench94")}[result.get("task", "mnist")]  # fmt: skip
        target = f"{result.get('target', 0.99):.0%}"
        peer = [summary.get(name), summary.get(f"{name}-tuned")] if name in summary else []
        bases = [s["median_seconds"] for s in peer if s]
        headers = [h.format(base=label, target=target) for h in words["peers"]]
        if len(bases) == 2:  # the peer as published, and given this machine's layout and precision
            headers.insert(4, words["tuned"].format(base=label))
        rows = []
        for recipe, s in summary.items():
            ratios = [f"{s['median_seconds'] / b:.2f}" for b in bases] or ["—"]
            rows.append([words.get(recipe, recipe), str(s["runs"]), f"{s['median_seconds']:.1f}",
                         *ratios, f"{s['mean_test_acc']:.4f}", f"{s['min_test_acc']:.4f}",
                         f"{s['at_target']} / {s['runs']}"])  # fmt: skip
        return [(headers, rows)]
    pairs = []
    for entry in result["tasks"].values():
        runs = entry["runs"]
        base = runs["lab"]["samples_per_second"]
        for loop, run in runs.items():
            speedup = run["samples_per_second"] / base
            ttt = run["time_to_target"]
            pairs.append([
                entry["task"]["label"], words[loop], str(run["config"]["batch_size"]),
                f"{run['samples_per_second']:,.0f}", f"{speedup:.1f}×",
                f"{run['test_acc'][-1]:.4f}",
                f"{ttt:.1f} ({run['target_acc']:.4f})" if ttt is not None else words["never"],
                f"{run['peak_memory_mib']:,.0f}",
            ])  # fmt: skip
    tables = [(words["loops"], pairs)]
    if result.get("speedrun"):
        runs = [[words["mnist"], str(i), f"{r['seconds']:.1f}", f"{r['test_acc']:.4f}"]
                for i, r in enumerate(result["speedrun"])]  # fmt: skip
        tables.append((words["speedrun"], runs))
    return tables


class BenchTables(SphinxDirective):
    """``{dlnotes-bench}`` with a benchmark result JSON: its machine, its tables and its figure
    (the PNG beside it), or a line saying it has not been measured."""

    required_arguments = 1

    def run(self):
        language = self.config.language if self.config.language in _BENCH_WORDS else "en"
        path = Path(self.env.relfn2path(self.arguments[0], self.env.docname)[1])
        self.env.note_dependency(str(path))
        # One container around generated text: without a source of their own, gettext leaves
        # its paragraphs out of the catalogs (the words come translated from _BENCH_WORDS).
        box = nodes.container(classes=["dlnotes-bench"])
        if not path.exists():
            box += nodes.paragraph(text=_BENCH_MISSING[language])
            return [box]
        result = json.loads(path.read_text(encoding="utf-8"))
        where = nodes.paragraph()
        where += nodes.literal(
            text=f"{result['machine']} · torch {result['torch']} · {result['date']}"
            + "".join(f" · {flag}" for flag in result.get("cpu", {}).get("flags", []))
        )
        box += where
        box.extend(_table(headers, rows) for headers, rows in bench_rows(result, language))
        if path.with_suffix(".png").exists():
            box += nodes.image(uri=str(Path(self.arguments[0]).with_suffix(".png")), width="100%")
        return [box]


def _table(headers: list[str], rows: list[list]) -> nodes.table:
    """Return a table; a cell is text, or (text, href) for a link."""
    table = nodes.table(classes=["dlnotes-overview"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in headers)
    for part, lines in ((nodes.thead(), [headers]), (nodes.tbody(), rows)):
        for line in lines:
            row = nodes.row()
            for cell in line:
                entry = nodes.entry()
                paragraph = nodes.paragraph()  # no source: gettext leaves it alone
                if isinstance(cell, tuple):
                    paragraph += nodes.reference(text=cell[0], refuri=cell[1], internal=True)
                else:
                    paragraph += nodes.Text(str(cell))
                entry += paragraph
                row += entry
            part += row
        group += part
    return table


STATIC = Path(__file__).parent / "static"  # the book's own CSS and JavaScript


def _add_static(app):
    app.config.html_static_path = [*app.config.html_static_path, str(STATIC)]


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("dlnotes.css")
    app.add_js_file("dlnotes.js")
    # Sphinx's Chinese search loads jieba, which logs its dictionary build at INFO on every build.
    logging.getLogger("jieba").setLevel(logging.WARNING)
    app.connect("html-page-context", _add_twin_link)
    pages.setup(app)
    tables.setup(app)
    explorers.setup(app)
    images.setup(app)
    app.add_directive("dlnotes-overview", OverviewTable)
    app.add_directive("dlnotes-datasets", DatasetTable)
    app.add_directive("dlnotes-bench", BenchTables)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
