"""Lighter pages: the site's PNG figures stored with a palette where that changes nothing visible.

Matplotlib writes a retina figure as full-colour RGBA, yet most of the book's figures hold a few
hundred colours (flat bands, lines, antialiased text): stored with a 256-colour palette they take
a quarter of the bytes. After each HTML build, every PNG in the site's ``_images/`` is converted
when the palette copy is smaller and within ``MIN_PSNR`` dB of the original; a photograph (a
CycleGAN sample, say) loses more than that and stays as it was. The reports themselves keep the
original figures.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

__all__ = ["palette_png", "lighten_images", "setup", "MIN_PSNR"]

MIN_PSNR = 40.0  # dB over the RGB channels: differences below one level in 255 on average
_log = logging.getLogger(__name__)


def palette_png(data: bytes) -> bytes | None:
    """Return ``data`` (a PNG) re-encoded with a 256-colour palette, or None where that is not
    smaller or not faithful (PSNR below ``MIN_PSNR``, or transparency that a palette would lose)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.mode == "P":
        return None  # already a palette
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba)[..., 3]
    if alpha.min() < 255:  # see-through pixels: leave them to the original
        return None
    rgb = rgba.convert("RGB")
    pixels = np.asarray(rgb)
    colours, index = np.unique(pixels.reshape(-1, 3), axis=0, return_inverse=True)
    if len(colours) <= 256:  # exactly: a grey-scale figure, flat bands
        quantized = Image.fromarray(index.reshape(pixels.shape[:2]).astype(np.uint8), mode="P")
        quantized.putpalette(colours.astype(np.uint8).tobytes())
    else:
        quantized = rgb.quantize(
            colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
        error = pixels.astype(np.float64) - np.asarray(quantized.convert("RGB"), np.float64)
        mse = float((error**2).mean())
        if mse and 10 * np.log10(255**2 / mse) < MIN_PSNR:
            return None
    buffer = io.BytesIO()
    keep = {"dpi": image.info["dpi"]} if "dpi" in image.info else {}  # the figure's scale
    quantized.save(buffer, format="PNG", optimize=True, **keep)
    smaller = buffer.getvalue()
    return smaller if len(smaller) < len(data) else None


def lighten_images(folder: Path) -> tuple[int, int]:
    """Convert the PNGs in ``folder`` where :func:`palette_png` allows; return (before, after)
    bytes in all. Each file is replaced atomically."""
    from ..files import write_atomic

    before = after = 0
    for path in sorted(folder.glob("*.png")):
        data = path.read_bytes()
        before += len(data)
        lighter = palette_png(data)
        if lighter is not None:
            write_atomic(path, lighter)
            data = lighter
        after += len(data)
    return before, after


def _after_build(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    folder = Path(app.outdir) / "_images"
    if folder.is_dir():
        before, after = lighten_images(folder)
        _log.info(
            "dlnotes: site images %.1f MB → %.1f MB (palette PNGs)", before / 1e6, after / 1e6
        )


def setup(app):
    """Register the hook (called from ``dlnotes.runner.sphinxext.setup``)."""
    app.connect("build-finished", _after_build)
