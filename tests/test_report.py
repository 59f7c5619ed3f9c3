import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dlnotes.report import publish
from dlnotes.runner.chapter import metrics_from_notebook


def _glued(name, text, prefix="application/papermill.record/"):
    return new_output(
        "display_data",
        data={prefix + "text/plain": text},
        metadata={"scrapbook": {"name": name, "mime_prefix": prefix}},
    )


def test_metrics_from_notebook_keeps_glued_numbers_only_and_non_finite_as_none():
    cell = new_code_cell("x")
    cell.outputs = [
        _glued("acc", "0.97"),
        _glued("n", "12", prefix=""),
        _glued("label", "'relu'"),
        _glued("bad", "np.float64(1.0)"),
        _glued("flag", "True"),
        _glued("loss", "nan"),
        _glued("peak", "inf"),
        _glued("low", "-inf"),
        _glued("word", "'nan'"),
        new_output("stream", text="0.5"),
    ]
    nb = new_notebook(cells=[new_markdown_cell("# t"), cell])
    # a number that overflowed is kept, as None (null in JSON): the run did publish it
    expected = {"acc": 0.97, "n": 12, "loss": None, "peak": None, "low": None}
    assert metrics_from_notebook(nb) == expected


def test_publish_returns_plain_numbers_and_refuses_text():
    np = pytest.importorskip("numpy")
    assert publish(a=np.float64(0.5), b=np.int64(3)) == {"a": 0.5, "b": 3}
    with pytest.raises(TypeError, match="publish\\(\\) takes numbers; c is str"):
        publish(c="high")
