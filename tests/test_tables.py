"""The words of the result tables become messages with their numbers taken out, and go back in."""

import re

from dlnotes.runner.tables import fill, table_messages, template, translate_tables


def test_numbers_become_placeholders_and_names_stay_whole():
    assert template("fits (4 of 5)") == ("fits ({0} of {1})", ["4", "5"])
    assert template("dropout 0.1, no BN") == ("dropout {0}, no BN", ["0.1"])
    assert template("cycle error, L1 in [-1, 1] ↓") == (
        "cycle error, L1 in [{0}, {1}] ↓",
        ["-1", "1"],
    )
    assert template("97.14% (50 epochs)") == ("{0} ({1} epochs)", ["97.14%", "50"])
    assert template("12,000 images") == ("{0} images", ["12,000"])
    # Numbers inside names are part of the name.
    for name in ("LeNet-5", "TTUR (D 4e-4, G 1e-4)", "fc1 grad", "ResNet-18 half width"):
        assert template(name) == (name, [])
    assert fill("拟合（{1} 次中 {0} 次）", ["4", "5"]) == "拟合（5 次中 4 次）"


def test_table_messages_skip_numbers_names_and_markup():
    raw = (
        '<table><caption>worst error</caption><tr><th class="blank">&nbsp;</th>'
        "<th>train acc</th><th>exp_cos</th><th>relu</th></tr>"
        "<tr><td>0.931</td><td>fits (4 of 5)</td><td>fits (5 of 5)</td><td><b>bold</b></td></tr></table>"
    )
    assert table_messages(raw) == ["worst error", "train acc", "relu", "fits ({0} of {1})"]
    assert table_messages("<p>train acc</p>") == []  # only tables
    script = '<script>var t = "<table><tr><th>3\\u00d73 stem</th></tr></table>";</script>'
    assert table_messages(script + "<table><tr><th>3×3 stem</th></tr></table>") == ["{0}×{1} stem"]


def test_translate_tables_replaces_only_translated_cells_and_escapes():
    raw = "<table><tr><th>train acc</th><th>relu</th></tr><tr><td>fits (4 of 5)</td></tr></table>"
    catalog = {"train acc": "训练 <准确率>", "fits ({0} of {1})": "拟合（{1} 次中 {0} 次）"}
    out, changed = translate_tables(raw, lambda m: catalog.get(m, m))
    assert changed == 2
    assert "<th>训练 &lt;准确率&gt;</th><th>relu</th>" in out
    assert re.search(r"<td>拟合（5 次中 4 次）</td>", out)
    assert translate_tables("<p>train acc</p>", lambda m: "x") == ("<p>train acc</p>", 0)
