"""Explorers that work on the static page: results precomputed in the run, drawn by Vega-Lite.

A chapter computes a table of results over a grid of settings, one row per setting: the values of
the settings, numbers, and an image (a PNG data URI). ``explorer`` turns the table into a Vega-Lite
chart (built with Altair) whose controls pick one row; ``show`` puts the chart in the notebook
twice: as Vega-Lite, which JupyterLab draws, and as an HTML block that the book draws with the Vega
scripts its site serves once (``dlnotes.runner.explorers``). No Python runs when a control moves,
so the page needs no kernel and no network.

The words a reader sees (titles, control names, option labels, captions) are listed in the spec's
``usermeta``; the Chinese build translates them from the chapter's message catalog.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Control",
    "slider",
    "choice",
    "png_uri",
    "photo_uri",
    "jpeg_bytes",
    "boundary_uri",
    "explorer",
    "table_explorer",
    "shading_explorer",
    "image_uri",
    "maps_uri",
    "show",
    "messages",
    "uri_bytes",
]

# The HTML block the book's script draws; its spec sits in a JSON script inside it.
HTML_CLASS = "dlnotes-explorer"


@dataclass
class Control:
    """One control: the table column it sets, its name on the page, the values it offers."""

    field: str
    name: str
    values: list
    labels: list[str] | None = None  # shown instead of the values (radio buttons, menus)
    kind: str = "radio"  # radio | select | range (a slider over the positions of ``values``)
    value: object = None  # the first value shown; None: the last one

    @property
    def param(self) -> str:
        return f"p_{self.field}"


def slider(field: str, name: str, values: Sequence, value=None) -> Control:
    """A slider over the positions 0 … len(values) - 1 of ``values`` (column ``field + '_i'``)."""
    return Control(field, name, list(values), kind="range", value=value)


def choice(field: str, name: str, values: Sequence, labels=None, value=None, menu=False) -> Control:
    """Radio buttons (or a menu, ``menu=True``) over ``values``."""
    labels = None if labels is None else [str(label) for label in labels]
    kind = "select" if menu else "radio"
    return Control(field, name, list(values), labels, kind, value)


def png_uri(image: np.ndarray) -> str:
    """Return an (H, W) or (H, W, 3|4) uint8 image as a PNG data URI.

    An image of at most 256 colours is stored with a palette (a decision boundary's ten bands
    take a tenth of the bytes of RGB).
    """
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if picture.mode in ("RGB", "RGBA") and len(picture.getcolors(256) or ()) > 0:
        picture = picture.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=0)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def photo_uri(image: np.ndarray, quality: int = 85) -> str:
    """Return an (H, W, 3) uint8 photograph as a JPEG data URI.

    Photographs (CycleGAN's horses and zebras) have tens of thousands of colours: a palette PNG
    bands them and a full-colour PNG is several times the size of a JPEG that looks the same.
    """
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, quality)).decode("ascii")


def jpeg_bytes(image: np.ndarray, quality: int = 85) -> bytes:
    """Return an (H, W, 3) uint8 image as JPEG bytes (see :func:`photo_uri`)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def image_uri(image, value_range=None, cmap: str = "gray_r") -> str:
    """Return one image ((H, W) or (C, H, W), see ``viz.display_image``) as a PNG data URI; a
    single channel through ``cmap`` (dark ink on white, as the book's figures draw it)."""
    import matplotlib

    from .viz import display_image

    shown = display_image(image, value_range)
    if shown.ndim == 2:
        shown = matplotlib.colormaps[cmap](shown)[..., :3]
    return png_uri((shown * 255).round().astype(np.uint8))


def maps_uri(maps, columns: int = 8, cmap: str = "viridis") -> str:
    """Return feature maps (K, H, W), each stretched to its own range, tiled ``columns`` wide
    with a 1-pixel white gap, as one PNG data URI."""
    import matplotlib

    from .viz import display_image

    maps = [display_image(m) for m in maps]
    h, w = maps[0].shape
    rows = -(-len(maps) // columns)
    sheet = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, 3))
    for k, m in enumerate(maps):
        r, c = divmod(k, columns)
        sheet[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = matplotlib.colormaps[
            cmap
        ](m)[..., :3]
    return png_uri((sheet * 255).round().astype(np.uint8))


def uri_bytes(uri: str) -> int:
    """Return the size of a data URI's payload in bytes (what the page carries for it)."""
    return len(uri.split(",", 1)[1]) * 3 // 4


def boundary_uri(prob: np.ndarray) -> str:
    """Return P(class 1) over a grid (row 0 at the bottom) coloured in ``viz``'s ten bands."""
    from .viz import _CMAP, _NORM

    rgba = _CMAP(_NORM(np.nan_to_num(np.asarray(prob, dtype=float), nan=0.5)), bytes=True)
    return png_uri(rgba[::-1, :, :3])  # images run top-down, the grid bottom-up


@dataclass
class _Words:
    """The words the reader sees, collected while the chart is built (for the translations)."""

    seen: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # data columns whose values are words
    params: list[str] = field(default_factory=list)  # menus over such a column

    def meta(self) -> dict:
        return {"dlnotes": {"messages": self.seen, "columns": self.columns, "params": self.params}}

    def __call__(self, text: str) -> str:
        if text and text not in self.seen:
            self.seen.append(text)
        return text

    def literal(self, text: str) -> str:
        """``text`` as a quoted string inside a Vega expression."""
        return json.dumps(self(text), ensure_ascii=False).replace("'", "\\'")[1:-1].join("''")


def _compact(frame):
    """Round the float columns to 4 significant digits: the page carries every number as text."""
    frame = frame.copy()
    for column in frame.select_dtypes("floating"):
        frame[column] = [float(f"{v:.4g}") for v in frame[column]]
    return frame


def _binding(control: Control, words: _Words):
    import altair as alt

    name = words(control.name) + " "
    if control.kind == "range":
        return alt.binding_range(min=0, max=len(control.values) - 1, step=1, name=name)
    labels = [words(label) for label in control.labels] if control.labels else None
    bind = alt.binding_select if control.kind == "select" else alt.binding_radio
    options = {"options": control.values, "name": name}
    return bind(**options, **({"labels": labels} if labels else {}))


def explorer(
    rows,
    controls: Sequence[Control],
    *,
    image: str = "image",
    size: tuple[int, int] = (240, 240),
    caption: Sequence[tuple[str, str, str]] = (),
    title: str = "",
    points=None,
    extent: tuple[float, float, float, float] | None = None,
    curves=None,
    curve: dict | None = None,
    more_images: Sequence[tuple[str, tuple[int, int], str]] = (),
    bars=None,
    bar: dict | None = None,
):
    """Return an Altair chart that shows the row of ``rows`` the ``controls`` pick.

    rows: a DataFrame, one row per setting, with a column per control and the ``image`` column
        (data URIs); a slider's column holds the value, its position is added as ``field_i``.
    caption: ``(words, column, d3 format)`` triples shown under the image, e.g.
        ``("test accuracy", "test_acc", ".1%")``; format None shows a text column as it is.
    more_images: ``(column, (width, height), title)`` of further images of the row, beside it.
    bars, bar: a DataFrame of bars for the picked row (the columns of the controls it has), with
        ``bar = dict(x=value column, y=label column, order=column, title=x axis title)``.
    points, extent: a DataFrame ``x, y, label`` (0/1) drawn over the image, whose corners are
        ``extent = (xmin, xmax, ymin, ymax)``: a decision boundary with its data.
    curves, curve: a DataFrame of curves beside the image, one line per ``curve['series']``,
        ``x``/``y`` columns named in ``curve``, filtered by the controls whose column it has;
        a rule marks the picked row's ``curve['at']`` value. ``curve['title']`` names the y axis.
    """
    import altair as alt

    words, rows = _Words(), _compact(rows)
    width, height = size
    params, tests = [], []
    for c in controls:
        if c.field not in rows:
            raise ValueError(f"explorer: no column {c.field!r} for the control {c.name!r}")
        missing = set(rows[c.field]) - set(c.values)
        if missing:
            raise ValueError(f"explorer: {c.field} takes {sorted(missing)} not in its control")
        start = c.values[-1] if c.value is None else c.value
        if c.kind == "range":
            rows[f"{c.field}_i"] = [c.values.index(v) for v in rows[c.field]]
            start, column = c.values.index(start), f"{c.field}_i"
        else:
            column = c.field
        params.append(alt.param(name=c.param, value=start, bind=_binding(c, words)))
        tests.append(f"datum[{json.dumps(column)}] == {c.param}")
    picked = " && ".join(tests) or "true"
    columns = [(c, f"{c.field}_i" if c.kind == "range" else c.field) for c in controls]
    # A DataFrame, not inline values: Altair stores it once in the spec's ``datasets``.
    base = alt.Chart(rows).transform_filter(picked)
    view = base.mark_image(width=width, height=height, align="left", baseline="top").encode(
        x=alt.value(0), y=alt.value(0), url=alt.Url(f"{image}:N")
    )
    if points is not None:
        x0, x1, y0, y1 = extent
        scale = {"nice": False, "zero": False, "padding": 0}
        dots = (
            alt.Chart(_compact(points))
            .mark_circle(size=12, opacity=0.85, stroke="white", strokeWidth=0.4)
            .encode(
                x=alt.X("x:Q", scale=alt.Scale(domain=[x0, x1], **scale), axis=None),
                y=alt.Y("y:Q", scale=alt.Scale(domain=[y0, y1], **scale), axis=None),
                color=alt.Color(
                    "label:N", scale=alt.Scale(domain=[0, 1], range=["#2166ac", "#b2182b"]),
                    legend=None,
                ),
            )
        )  # fmt: skip
        view = alt.layer(view, dots)
    view = view.properties(width=width, height=height)
    if caption:
        parts = [
            f"{words.literal(label)} + ' ' + "
            + (f"format(datum[{json.dumps(col)}], {json.dumps(fmt)})" if fmt else
               f"datum[{json.dumps(col)}]")
            for label, col, fmt in caption
        ]  # fmt: skip
        text = (
            base.transform_calculate(caption=" + '  ·  ' + ".join(parts))
            .mark_text(align="left", baseline="top", fontSize=12)
            .encode(x=alt.value(0), y=alt.value(4), text="caption:N")
        )
        view = alt.vconcat(view, text.properties(width=width, height=20), spacing=4)
    beside = []
    for column, (w, h), heading in more_images:
        beside.append(
            base.mark_image(width=w, height=h, align="left", baseline="top")
            .encode(x=alt.value(0), y=alt.value(0), url=alt.Url(f"{column}:N"))
            .properties(width=w, height=h, title=words(heading))
        )
    if bars is not None:
        bars = _compact(bars)
        keep = []
        for c, column in columns:
            if c.field in bars:
                if c.kind == "range":
                    bars[column] = [c.values.index(v) for v in bars[c.field]]
                keep.append(f"datum[{json.dumps(column)}] == {c.param}")
        beside.append(
            alt.Chart(bars).transform_filter(" && ".join(keep) or "true")
            .mark_bar(color="#4c72b0")
            .encode(
                x=alt.X(f"{bar['x']}:Q", title=words(bar["title"]), scale=alt.Scale(domain=[0, 1])),
                y=alt.Y(f"{bar['y']}:N", title=None, sort=alt.EncodingSortField(bar["order"])),
            )
            .properties(width=bar.get("width", 160), height=bar.get("height", 110))
        )  # fmt: skip
    if beside:
        view = alt.hconcat(view, *beside, spacing=24)
    if curves is not None:
        view = alt.hconcat(view, _curves(curves, curve, controls, base, words), spacing=24)
        view = view.resolve_scale(color="independent")  # the points' classes, the curves' series
    chart = view.add_params(*params).configure_view(stroke=None)
    chart = chart.configure_axis(labelFontSize=11, titleFontSize=12)
    if title:
        chart = chart.properties(title=words(title))
    # The texts of the curve series are words too (train, test …).
    return chart.properties(usermeta=words.meta())


def _curves(curves, curve, controls, base, words):
    import altair as alt

    fields = [c for c in controls if c.field in curves]
    keep = " && ".join(
        f"datum[{json.dumps(c.field)}] == {c.param}" for c in fields if c.kind != "range"
    )
    series = curve["series"]
    curves = _compact(curves)
    curves[series] = [words(str(s)) for s in curves[series]]
    words.columns.append(series)
    y_title = words(curve["title"])
    x_title = words(curve.get("x_title", curve["x"]))
    lines = (
        alt.Chart(curves)
        .transform_filter(keep or "true")
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X(f"{curve['x']}:Q", title=x_title),
            y=alt.Y(f"{curve['y']}:Q", title=y_title, scale=alt.Scale(type=curve.get("scale", "linear"))),
            color=alt.Color(f"{series}:N", title=None, legend=alt.Legend(orient="top-right"),
                            scale=alt.Scale(domain=list(dict.fromkeys(curves[series])),
                                            range=["#4c72b0", "#dd8452", "#55a868", "#c44e52"])),
        )
    )  # fmt: skip
    rule = base.mark_rule(color="#444", strokeDash=[3, 3]).encode(x=f"{curve['at']}:Q")
    return alt.layer(lines, rule).properties(width=curve.get("width", 300), height=240)


def messages(spec: dict) -> list[str]:
    """Return the words of an explorer's spec (its ``usermeta``), for the translations."""
    return list(spec.get("usermeta", {}).get("dlnotes", {}).get("messages", []))


# JupyterLab, Notebook 7 and VS Code draw this type themselves (Altair 6's own constant,
# ``application/vnd.vegalite.v6.json``, lacks the ``+json`` that nbformat requires of JSON data).
# The specs stay within what Vega-Lite 5 compiles too (tests/test_explore.py checks it).
JUPYTER_MIME = "application/vnd.vegalite.v5+json"


def show(chart) -> None:
    """Display ``chart`` as Vega-Lite for Jupyter and as the HTML block the book draws."""
    from IPython.display import display

    spec = chart.to_dict()
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    block = (
        f'<div class="{HTML_CLASS}"><div class="{HTML_CLASS}-view"></div>'
        f'<script type="application/json">{data}</script></div>'
    )
    shown = messages(spec)[-1] if messages(spec) else "explorer"
    display(
        {JUPYTER_MIME: spec, "text/html": block, "text/plain": f"<{html.escape(shown)}>"},
        raw=True,
    )


def table_explorer(
    table,
    columns: dict[str, str],
    *,
    key: str,
    group: str,
    curves,
    curve: dict,
    chosen: Sequence[str],
    title: str = "",
):
    """Return an Altair chart: ``table`` (one row per run, named in column ``key``) sorted by a
    column the reader picks and filtered by ``group``, beside the curves of the runs the reader
    clicks (``chosen`` to start with).

    columns: ``{column: d3 format}`` of the table shown after the run's name; each is a choice of
        the sort menu (largest first).
    curves, curve: a DataFrame with ``key`` and the ``curve['x']`` / ``curve['y']`` columns,
        ``curve['title']`` naming the y axis and ``curve['x_title']`` the x axis.
    """
    import altair as alt

    words, table = _Words(), _compact(table)
    groups = list(dict.fromkeys(table[group]))
    every = words("every group")
    table[group] = [words(g) for g in table[group]]
    words.columns.append(group)
    words.params.append("p_group")
    sort = alt.param(
        name="p_sort",
        value=list(columns)[0],
        bind=alt.binding_select(
            options=list(columns), labels=[words(c) for c in columns], name=words("sort by") + " "
        ),
    )
    show = alt.param(name="p_group", value=every,
                     bind=alt.binding_select(options=[every, *map(words, groups)],
                                             name=words("show") + " "))  # fmt: skip
    clicked = alt.selection_point(name="p_runs", fields=[key], toggle="true",
                                  value=[{key: k} for k in chosen])  # fmt: skip
    rows = (
        alt.Chart(table)
        .transform_filter(f"p_group == {words.literal(every)} || datum[{json.dumps(group)}] == p_group")
        # Largest first; a run without the number last.
        .transform_calculate(order="isValid(datum[p_sort]) ? -datum[p_sort] : 1e300")
        .transform_window(row="row_number()", sort=[alt.SortField("order")])
    )  # fmt: skip
    y = alt.Y("row:O", axis=None)
    # A clicked run is drawn dark and marked ●, the others grey.
    dark = alt.condition(clicked, alt.value("#111"), alt.value("#888"))
    name = (
        rows.transform_calculate(label=f"datum[{json.dumps(key)}]")
        .mark_text(align="left", cursor="pointer")
        .encode(y=y, x=alt.value(12), text="label:N", color=dark)
        .add_params(clicked)
        .properties(width=170, title=alt.TitleParams(words(key), anchor="start"))
    )
    dots = rows.mark_text(align="left").encode(
        y=y, x=alt.value(0), text=alt.condition(clicked, alt.value("●"), alt.value("○")), color=dark
    )
    cells = [
        rows.transform_calculate(
            shown=f"isValid(datum[{json.dumps(c)}]) ? format(datum[{json.dumps(c)}], "
            f"{json.dumps(fmt)}) : ''"
        )
        .mark_text(align="right")
        .encode(y=y, x=alt.value(94), color=dark, text="shown:N")
        .properties(width=98, title=alt.TitleParams(c, fontSize=10, anchor="end", limit=98))
        for c, fmt in columns.items()
    ]
    lines = (
        alt.Chart(_compact(curves)).transform_filter(clicked).mark_line(point=True, strokeWidth=1.2)
        .encode(x=alt.X(f"{curve['x']}:Q", title=words(curve.get("x_title", curve["x"]))),
                y=alt.Y(f"{curve['y']}:Q", title=words(curve["title"]), scale=alt.Scale(zero=False)),
                color=alt.Color(f"{key}:N", title=None, legend=alt.Legend(orient="bottom", columns=2)))
        .properties(width=420, height=220)
    )  # fmt: skip
    # The curves under the table: side by side they would not fit the book's column.
    chart = alt.vconcat(alt.hconcat(alt.layer(name, dots), *cells, spacing=4), lines, spacing=16)
    chart = chart.add_params(sort, show).configure_view(stroke=None)
    if title:
        chart = chart.properties(title=words(title))
    return chart.properties(usermeta=words.meta())


def shading_explorer(
    tokens,
    texts,
    *,
    key: str,
    layers: int,
    caption: Sequence[tuple[str, str, str]] = (),
    title: str = "",
    columns: int = 78,
    text_name: str = "review",
    layer_name: str = "layer",
    word_columns: Sequence[str] = (),
):
    """Return an Altair chart of word pieces shaded by a weight per layer: a menu picks the text
    (``key``), a slider the layer.

    tokens: a DataFrame, one row per piece in reading order: ``key``, ``text`` (the piece, with
        ``##`` where it continues a word) and weights ``w1`` … ``w{layers}`` in [0, 1].
    texts: a DataFrame, one row per text: ``key`` and the columns ``caption`` names; the values
        of ``word_columns`` (a label such as "positive") are words, translated with the page.
    Pieces are set in a monospaced font, ``columns`` characters to a line, so that their places
    can be computed here and the page needs no text measurement.
    """
    import altair as alt
    import pandas as pd

    words, placed = _Words(), []
    for _, group in tokens.groupby(key, sort=False):
        line, col = 0, 0
        for _, t in group.iterrows():
            glued = t["text"].startswith("##")
            piece = t["text"][2:] if glued else t["text"]
            start = col if glued or col == 0 else col + 1
            if start + len(piece) > columns:
                line, start = line + 1, 0
            placed.append({**t.to_dict(), "piece": piece, "line": line, "col": start})
            col = start + len(piece)
    placed = _compact(pd.DataFrame(placed).drop(columns="text"))
    lines = int(placed["line"].max()) + 1
    cw, lh = 7.2, 18  # a 12 px monospaced character, a line
    for column in word_columns:
        texts = texts.assign(**{column: [words(str(v)) for v in texts[column]]})
        words.columns.append(column)
    keys = list(dict.fromkeys(texts[key]))
    pick = alt.param(
        name="p_text",
        value=keys[0],
        bind=alt.binding_select(options=keys, name=words(text_name) + " "),
    )
    depth = alt.param(
        name="p_layer",
        value=layers,
        bind=alt.binding_range(min=1, max=layers, step=1, name=words(layer_name) + " "),
    )
    base = (
        alt.Chart(placed)
        .transform_filter(f"datum[{json.dumps(key)}] == p_text")
        .transform_calculate(
            x0=f"datum.col * {cw}",
            x1=f"(datum.col + length(datum.piece)) * {cw}",
            y0=f"datum.line * {lh}",
            w="datum['w' + p_layer]",
        )
    )
    shade = (
        base.mark_rect(color="#e6781e")
        .encode(
            x=alt.X("x0:Q", scale=None),
            x2="x1:Q",
            y=alt.Y("y0:Q", scale=None),
            y2=alt.Y2("y1:Q"),
            opacity=alt.Opacity("w:Q", scale=None),
        )
        .transform_calculate(y1=f"datum.y0 + {lh - 2}")
    )
    text = base.mark_text(align="left", baseline="top", font="monospace", fontSize=12, dy=2).encode(
        x=alt.X("x0:Q", scale=None), y=alt.Y("y0:Q", scale=None), text="piece:N"
    )
    view = alt.layer(shade, text).properties(width=int(columns * cw) + 4, height=lines * lh)
    if caption:
        parts = [
            f"{words.literal(label)} + ' ' + "
            + (
                f"format(datum[{json.dumps(col)}], {json.dumps(fmt)})"
                if fmt
                else f"datum[{json.dumps(col)}]"
            )
            for label, col, fmt in caption
        ]
        note = (
            alt.Chart(_compact(texts))
            .transform_filter(f"datum[{json.dumps(key)}] == p_text")
            .transform_calculate(caption=" + '  ·  ' + ".join(parts))
            .mark_text(align="left", baseline="top", fontSize=12)
            .encode(x=alt.value(0), y=alt.value(2), text="caption:N")
            .properties(width=int(columns * cw), height=18)
        )
        view = alt.vconcat(note, view, spacing=6)
    chart = view.add_params(pick, depth).configure_view(stroke=None)
    if title:
        chart = chart.properties(title=words(title))
    return chart.properties(usermeta=words.meta())
