"""The kernel-free explorers: the spec a chapter makes, the page's translation of it."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dlnotes import explore
from dlnotes.runner.explorers import explorer_specs, translate_spec


def _decode(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def _rows():
    rows = []
    for act in ("relu", "tanh"):
        for i, step in enumerate([0, 10, 100]):
            prob = np.full((8, 8), (i + 1) / 4 if act == "relu" else 1 - (i + 1) / 4)
            rows.append({"activation": act, "snapshot": i, "step": step,
                         "acc": 0.5 + 0.1 * i, "image": explore.boundary_uri(prob)})  # fmt: skip
    return pd.DataFrame(rows)


def _chart(rows, **kw):
    controls = [
        explore.choice("activation", "activation", ["relu", "tanh"], value="tanh", menu=True),
        explore.slider("snapshot", "snapshot", [0, 1, 2], value=1),
    ]
    return explore.explorer(rows, controls, caption=[("train accuracy", "acc", ".1%")],
                            title="Boundary during training", **kw)  # fmt: skip


def test_boundary_image_runs_top_down_in_the_bands_of_the_figures():
    prob = np.zeros((6, 4))
    prob[-1] = 0.97  # the grid's top row (its last): class 1, red
    picture = _decode(explore.boundary_uri(prob))
    assert picture.size == (4, 6)
    top, bottom = picture.getpixel((0, 0)), picture.getpixel((0, 5))
    assert top[0] > top[2] and bottom[2] > bottom[0], (top, bottom)


def test_explorer_binds_one_control_per_column_and_lists_its_words():
    spec = _chart(_rows()).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["p_activation"]["bind"]["input"] == "select"
    assert params["p_activation"]["value"] == "tanh"
    assert params["p_snapshot"]["bind"] == {"input": "range", "min": 0, "max": 2, "step": 1,
                                            "name": "snapshot "}  # fmt: skip
    assert params["p_snapshot"]["value"] == 1  # a slider holds the position of its value
    words = explore.messages(spec)
    assert {"activation", "snapshot", "train accuracy", "Boundary during training"} <= set(words)
    # The rows are stored once, however many marks read them.
    assert sum(len(v) == 6 for v in spec["datasets"].values()) == 1


def test_explorer_refuses_a_control_the_table_cannot_answer():
    rows = _rows()
    with pytest.raises(ValueError, match="no column 'width'"):
        explore.explorer(rows, [explore.choice("width", "width", [1, 2])])
    with pytest.raises(ValueError, match=r"takes \['tanh'\] not in its control"):
        explore.explorer(rows, [explore.choice("activation", "activation", ["relu"])])


@pytest.mark.parametrize("vl_version", ["5.21", "6.4"])
def test_the_picked_row_is_drawn_by_vega_lite(vl_version):
    """Vega-Lite itself (vl-convert's copy) draws the row the controls start on: Jupyter's
    renderer is Vega-Lite 5, the book's 6."""
    import vl_convert

    rows = _rows()
    spec = _chart(rows).to_dict()
    svg = vl_convert.vegalite_to_svg(spec, vl_version=vl_version)
    picked = rows.query("activation == 'tanh' and snapshot == 1").iloc[0]
    others = rows[rows["image"] != picked["image"]]["image"]
    assert picked["image"] in svg
    assert not any(uri in svg for uri in others)
    assert "train accuracy 60.0%" in svg


def test_show_puts_vega_lite_for_jupyter_and_the_block_for_the_book(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.append(obj))
    rows = _rows()
    rows.loc[0, "activation"] = "relu"
    chart = _chart(rows.assign(note="</script><b>"))  # a closing tag inside the data
    explore.show(chart)
    (bundle,) = shown
    assert bundle[explore.JUPYTER_MIME] == chart.to_dict()
    (spec,) = explorer_specs(bundle["text/html"])
    assert spec == chart.to_dict()
    assert "</script><b>" not in bundle["text/html"]


def test_translation_replaces_the_words_and_nothing_else():
    spec = _chart(_rows(), curves=None).to_dict()
    zh = {"activation": "激活函数", "snapshot": "快照", "train accuracy": "训练准确率",
          "Boundary during training": "训练中的决策边界"}  # fmt: skip
    translated, changed = translate_spec(spec, lambda m: zh.get(m, m))
    text = json.dumps(translated, ensure_ascii=False)
    assert changed >= 4
    assert translated["title"] == "训练中的决策边界"
    params = {p["name"]: p for p in translated["params"]}
    assert params["p_activation"]["bind"]["name"] == "激活函数 "
    assert "'训练准确率'" in text and "'train accuracy'" not in text

    # Field names and data stay as they were: the filters still find their rows.
    def filters(s):
        return [t["filter"] for t in s["vconcat"][0]["transform"] if "filter" in t]

    assert filters(translated) == filters(spec) and "p_activation" in filters(spec)[0]
    assert translated["datasets"] == spec["datasets"]
    assert translate_spec(spec, lambda m: m) == (spec, 0)


def _table_chart():
    table = pd.DataFrame({"run": ["baseline", "no residual", "wider"],
                          "group": ["model", "residual", "model"],
                          "best val acc": [0.41, 0.37, 0.45], "report": [0.4, None, None]})  # fmt: skip
    curves = pd.DataFrame([{"run": r, "epoch": e, "val": 0.1 * e} for r in table["run"]
                           for e in (1, 2, 3)])  # fmt: skip
    return explore.table_explorer(
        table, {"best val acc": ".1%", "report": ".1%"}, key="run", group="group",
        curves=curves, curve=dict(x="epoch", y="val", title="validation accuracy"),
        chosen=["wider"],
    )  # fmt: skip


def _shading_chart():
    tokens = pd.DataFrame([{"review": r, "text": t, "w1": 0.2, "w2": 0.9}
                           for r in (1, 2) for t in ("a", "dull", "film", "##s")])  # fmt: skip
    texts = pd.DataFrame({"review": [1, 2], "label": ["negative", "positive"], "p": [0.2, 0.8]})
    return explore.shading_explorer(tokens, texts, key="review", layers=2,
                                    caption=[("label", "label", None), ("P(positive)", "p", ".2f")],
                                    word_columns=["label"])  # fmt: skip


@pytest.mark.parametrize("vl_version", ["5.21", "6.4"])
def test_table_and_shading_explorers_draw_in_vega_lite(vl_version):
    import vl_convert

    svg = vl_convert.vegalite_to_svg(_table_chart().to_dict(), vl_version=vl_version)
    # Sorted by the first column, largest first; a missing number is left blank.
    rows = re.findall(r'translate\(12,([\d.]+)\)"[^>]*>(wider|baseline|no residual)<', svg)
    assert [name for _, name in sorted(rows, key=lambda r: float(r[0]))] == [
        "wider", "baseline", "no residual"]  # fmt: skip
    assert "45.0%" in svg and "NaN" not in svg and "null" not in svg
    svg = vl_convert.vegalite_to_svg(_shading_chart().to_dict(), vl_version=vl_version)
    assert ">films<" not in svg and ">film<" in svg and ">s<" in svg  # pieces, not words
    assert "label negative" in svg


def test_translated_curve_series_keep_their_colours():
    rows = _rows()
    curves = pd.DataFrame([{"activation": a, "step": s, "loss": 1 / (s + 1), "series": k}
                           for a in ("relu", "tanh") for s in (0, 10) for k in ("train", "test")])  # fmt: skip
    chart = _chart(rows, curves=curves, curve=dict(x="step", y="loss", series="series", at="step",
                                                   title="loss"))  # fmt: skip
    zh = {"train": "训练", "test": "测试"}
    translated, _ = translate_spec(chart.to_dict(), lambda m: zh.get(m, m))
    text = json.dumps({**translated, "usermeta": None}, ensure_ascii=False)
    assert '"domain": ["训练", "测试"]' in text and '"series": "训练"' in text
    assert '"train"' not in text


def test_translation_of_word_columns_keeps_menus_and_data_in_step():
    spec = _table_chart().to_dict()
    zh = {"model": "模型", "residual": "残差连接", "every group": "全部分组", "run": "运行"}
    translated, _ = translate_spec(spec, lambda m: zh.get(m, m))
    menu = next(p for p in translated["params"] if p["name"] == "p_group")
    assert menu["bind"]["options"] == ["全部分组", "模型", "残差连接"]
    assert menu["value"] == "全部分组"
    rows = next(v for v in translated["datasets"].values() if "group" in v[0])
    assert {r["group"] for r in rows} == {"模型", "残差连接"}
    assert {r["run"] for r in rows} == {"baseline", "no residual", "wider"}  # names stay
    sort = next(p for p in translated["params"] if p["name"] == "p_sort")
    assert sort["bind"]["options"] == ["best val acc", "report"]  # field names stay
