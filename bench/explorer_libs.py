"""One explorer, drawn by Vega-Lite (Altair) and by Plotly: page weight and load time.

Takes chapter 07's explorer data from its executed report (book/chapters/07_activations.ipynb:
one boundary image per activation and snapshot, the loss curves) and writes two stand-alone pages
under build/explorer-libs/: ``vega.html`` (the spec the book draws, with the book's Vega bundle
beside it) and ``plotly.html`` (the same images and curves as a Plotly figure, plotly.min.js
beside it, one slider over every (activation, snapshot) pair: Plotly's sliders and menus each
set a fixed state, so two controls over a product of results need JavaScript of our own). Then
opens each page over file:// in the distribution's Chromium, offline, and times navigation start
to the drawn explorer, the median of 7 fresh loads.

    .venv/bin/python bench/explorer_libs.py [REPORT]   # a table; build/explorer-libs/result.json
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "explorer-libs"


def explorer_spec(report: Path) -> dict:
    from dlnotes.runner.explorers import explorer_specs

    nb = json.loads(report.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            raw = output.get("data", {}).get("text/html")
            if raw and "dlnotes-explorer" in "".join(raw):
                return explorer_specs("".join(raw))[0]
    sys.exit(f"{report} has no explorer: run chapter 07 first (dlnotes run 07_activations)")


def vega_page(spec: dict) -> Path:
    import vl_convert

    (OUT / "vega.js").write_text(f"(function () {{\n{vl_convert.javascript_bundle()}\n}})();\n")
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    page = OUT / "vega.html"
    page.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><script src="vega.js"></script></head>'
        f'<body><div id="view"></div><script>const t0 = performance.now();'
        f"vegaEmbed('#view', {data}, {{actions: false, renderer: 'svg'}}).then(() => "
        "{ window.drawn = performance.now(); });</script></body></html>",
        encoding="utf-8",
    )
    return page


def plotly_page(spec: dict) -> Path:
    import plotly
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    datasets = list(spec["datasets"].values())
    rows = next(d for d in datasets if d and "image" in d[0])
    curves = next(d for d in datasets if d and "series" in d[0])
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55])
    frames = []
    for row in rows:
        lines = [c for c in curves if c["activation"] == row["activation"]]
        traces = [go.Image(source=row["image"], xaxis="x", yaxis="y")]
        for series in ("train", "test"):
            part = [c for c in lines if c["series"] == series]
            traces.append(go.Scatter(x=[c["step"] for c in part], y=[c["loss"] for c in part],
                                     mode="lines", name=series, xaxis="x2", yaxis="y2"))  # fmt: skip
        frames.append(go.Frame(data=traces, name=f"{row['activation']} {row['step']}",
                               traces=[0, 1, 2]))  # fmt: skip
    fig.add_traces(list(frames[0].data))
    fig.frames = frames
    steps = [{"method": "animate", "label": f.name,
              "args": [[f.name], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}]}
             for f in frames]  # fmt: skip
    fig.update_layout(sliders=[{"steps": steps}], width=760, height=380)
    fig.update_yaxes(type="log", row=1, col=2)
    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copyfile(source, OUT / "plotly.min.js")
    body = fig.to_html(include_plotlyjs=False, full_html=False, div_id="view")
    page = OUT / "plotly.html"
    page.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script>'
        f"</head><body>{body}<script>document.getElementById('view').on('plotly_afterplot', "
        "() => { window.drawn = window.drawn || performance.now(); });</script></body></html>",
        encoding="utf-8",
    )
    return page


def load_ms(page: Path, loads: int = 7) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for _ in range(loads):
            context = browser.new_context(offline=True)
            tab = context.new_page()
            tab.goto(page.as_uri())
            tab.wait_for_function("window.drawn !== undefined", timeout=60_000)
            times.append(tab.evaluate("window.drawn"))
            context.close()
        browser.close()
    return times


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    report = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "book/chapters/07_activations.ipynb"
    spec = explorer_spec(report)
    result = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "chromium": shutil.which("chromium"), "libraries": {}}  # fmt: skip
    for name, make, script in (("Vega-Lite (Altair)", vega_page, "vega.js"),
                               ("Plotly", plotly_page, "plotly.min.js")):  # fmt: skip
        page = make(spec)
        times = load_ms(page)
        result["libraries"][name] = {
            "page_bytes": page.stat().st_size,
            "script_bytes": (OUT / script).stat().st_size,
            "load_ms_median": statistics.median(times),
            "load_ms": [round(t, 1) for t in times],
        }
    (OUT / "result.json").write_text(json.dumps(result, indent=2))
    print(f"{'library':<20} {'page':>10} {'script':>10} {'drawn after (median of 7)':>28}")
    for name, r in result["libraries"].items():
        print(f"{name:<20} {r['page_bytes'] / 1e6:>8.2f} MB {r['script_bytes'] / 1e6:>7.2f} MB "
              f"{r['load_ms_median']:>24.0f} ms")  # fmt: skip


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")
