"""Measure the built book's chapter pages as a reader sees them, in headless Chromium, offline.

    python tools/page_metrics.py book/_build/site [--json out.json]

Per chapter and language: the article's height, the share of it taken by code cells as drawn
(a folded cell counts with its toggle's height), the number of code cells that scroll sideways
and the widest code line in px against the width it has, and the smallest text in the chapter's
figures as displayed: the smallest font size they are drawn with (``--smallest-pt``) × the PNG's
dpi / 72 × the scale at which the page shows the image.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

_MEASURE = """() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const box = (el) => el.getBoundingClientRect();
  const visible = (el) => el.offsetParent !== null && box(el).height > 0;
  let code = 0, scrolling = 0, widest = 0, room = 0, lines = 0;
  for (const cell of article.querySelectorAll('div.cell')) {
    const input = cell.querySelector(':scope > .cell_input, :scope > details');
    if (input && visible(input)) code += box(input).height;
    for (const pre of cell.querySelectorAll('.cell_input pre')) {
      if (!visible(pre)) continue;
      lines += pre.innerText.split('\\n').length;
      room = Math.max(room, pre.clientWidth);
      widest = Math.max(widest, pre.scrollWidth);
      if (pre.scrollWidth > pre.clientWidth + 1) scrolling += 1;
    }
  }
  const images = [...article.querySelectorAll('img')].filter(visible).map(
    (img) => ({src: img.currentSrc || img.src, natural: img.naturalWidth, shown: box(img).width}));
  return {height: box(article).height, code, scrolling, widest, room, lines, images};
}"""


def _dpi(src: str) -> float | None:
    """Return the dpi a PNG records (matplotlib writes it), reading a file:// or data: source."""
    if src.startswith("data:image/png;base64,"):
        import base64

        data = base64.b64decode(src.split(",", 1)[1])
    elif src.startswith("file://") and src.lower().endswith(".png"):
        data = Path(unquote(urlparse(src).path)).read_bytes()
    else:
        return None
    dpi = Image.open(io.BytesIO(data)).info.get("dpi")
    return float(dpi[0]) if dpi else None


def measure(site: Path, smallest_pt: float) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_context(offline=True, viewport={"width": 1280, "height": 900}).new_page()
        for language in ("en", "zh"):
            for html in sorted((site / language / "chapters").glob("*.html")):
                page.goto(html.as_uri())
                page.wait_for_load_state("load")
                page.wait_for_timeout(500)
                m = page.evaluate(_MEASURE)
                text_px = []
                for img in m.pop("images"):
                    dpi = _dpi(img["src"])
                    if dpi and img["natural"]:
                        text_px.append(smallest_pt * dpi / 72 * img["shown"] / img["natural"])
                rows.append({
                    "chapter": html.stem, "language": language, "height_px": round(m["height"]),
                    "code_share": m["code"] / m["height"], "code_lines": m["lines"],
                    "scrolling_cells": m["scrolling"], "widest_code_px": m["widest"],
                    "code_room_px": m["room"],
                    "smallest_figure_text_px": min(text_px) if text_px else None,
                })  # fmt: skip
        browser.close()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site (book/_build/site)")
    parser.add_argument("--smallest-pt", type=float, default=8.0,
                        help="smallest font size the figures are drawn with, in pt (default 8)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = measure(args.site.resolve(), args.smallest_pt)
    print("| chapter | lang | height px | code share | scrolling cells | widest code px (room) "
          "| smallest figure text px |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        small = r["smallest_figure_text_px"]
        print(f"| {r['chapter']} | {r['language']} | {r['height_px']:,} | {r['code_share']:.0%} "
              f"| {r['scrolling_cells']} | {r['widest_code_px']} ({r['code_room_px']}) "
              f"| {'–' if small is None else f'{small:.1f}'} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
