"""The site's PNGs are stored with a palette only where nothing visible changes."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from dlnotes.runner.images import MIN_PSNR, lighten_images, palette_png

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def test_a_figure_gets_a_palette_and_stays_within_the_psnr_bound():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=150)
    xs = np.linspace(0, 6, 200)
    ax.imshow(np.sin(xs)[None] * np.cos(xs)[:, None], cmap="RdBu_r", extent=(0, 6, 0, 6))
    ax.plot(xs, 3 + np.sin(xs), color="black")
    ax.set_title("a figure with text, lines and a colour map")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    original = buffer.getvalue()
    lighter = palette_png(original)
    assert lighter is not None and len(lighter) < len(original)
    assert Image.open(io.BytesIO(lighter)).mode == "P"
    assert Image.open(io.BytesIO(lighter)).info["dpi"] == pytest.approx((150, 150), abs=0.1)
    mse = ((_rgb(original) - _rgb(lighter)) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) >= MIN_PSNR


def test_few_colours_convert_exactly():
    levels = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    grey = np.kron(levels, np.ones((8, 8), dtype=np.uint8))  # blocks of up to 256 greys
    original = _png(Image.fromarray(np.stack([grey] * 3, axis=-1)))
    lighter = palette_png(original)
    assert lighter is not None
    assert np.array_equal(_rgb(original), _rgb(lighter))


def test_photographs_and_transparency_stay_as_they_are(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert palette_png(_png(Image.fromarray(noise))) is None
    see_through = np.zeros((8, 8, 4), dtype=np.uint8)
    assert palette_png(_png(Image.fromarray(see_through, mode="RGBA"))) is None
    (tmp_path / "photo.png").write_bytes(_png(Image.fromarray(noise)))
    before, after = lighten_images(tmp_path)
    assert before == after == (tmp_path / "photo.png").stat().st_size
