"""Figures and animations: decision boundaries, GIFs, and displays that survive the static book.

Every function returns its figure or bytes and styles through ``plt.rc_context``; none changes
global matplotlib state.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.colors import BoundaryNorm

__all__ = [
    "boundary_grid",
    "predict_grid",
    "plot_boundary",
    "boundary_panels",
    "animate_boundary",
    "animation_gif",
    "figure_png",
    "gif_gallery",
    "image_grid",
    "display_image",
    "show_image",
]

# Ten flat bands of P(y=1): flat colours keep GIFs small and make the 0.5 line easy to read.
_LEVELS = np.linspace(0.0, 1.0, 11)
_CMAP = matplotlib.colormaps["RdBu_r"].resampled(10)
_NORM = BoundaryNorm(_LEVELS, _CMAP.N)
_STYLE = {"figure.dpi": 64, "font.size": 9, "axes.titlesize": 10}
# For figures shown at their own size in the book's column (at most about 680 px wide): at 100
# dpi a 9 pt label is 12.5 px on the page, and a retina PNG doubles the pixels, not the size.
_BOOK = {"figure.dpi": 100, "font.size": 9, "axes.titlesize": 9}
COLUMN_INCHES = 6.8  # the widest figure shown 1:1 in the book's column at 100 dpi


def boundary_grid(X: np.ndarray | torch.Tensor, n: int = 120, pad: float = 0.5):
    """Return (points, extent) for an n×n grid around the 2-D data X.

    ``points`` is a float32 tensor of shape (n*n, 2), row-major from the bottom-left corner;
    ``extent`` is (xmin, xmax, ymin, ymax) for ``imshow``.
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    lo, hi = X.min(0).values - pad, X.max(0).values + pad
    xs, ys = torch.linspace(lo[0], hi[0], n), torch.linspace(lo[1], hi[1], n)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (n*n, 2)
    return points, (lo[0].item(), hi[0].item(), lo[1].item(), hi[1].item())


@torch.inference_mode()
def predict_grid(model: torch.nn.Module, points: torch.Tensor) -> np.ndarray:
    """Return P(y=1) of a one-logit binary model on a square grid of points, as an (n, n) array."""
    n = int(round(len(points) ** 0.5))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    prob = torch.sigmoid(model(points.to(device)).float()).reshape(n, n)
    model.train(was_training)
    return np.nan_to_num(prob.cpu().numpy(), nan=0.5)


def _draw_boundary(ax, prob, extent, X, y):
    image = ax.imshow(
        prob,
        origin="lower",
        extent=extent,
        cmap=_CMAP,
        norm=_NORM,
        interpolation="nearest",
        aspect="auto",
    )
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=np.asarray(y).reshape(-1),
        cmap="coolwarm",
        s=6,
        edgecolors="k",
        linewidths=0.2,
    )
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="$x_1$", ylabel="$x_2$")
    return image


def plot_boundary(prob: np.ndarray, extent, X, y, *, ax=None, title: str | None = None):
    """Return a figure of the predicted P(y=1) over the plane with the data points on top."""
    with plt.rc_context(_STYLE):
        if ax is None:
            fig, ax = plt.subplots(figsize=(3.2, 3.0))
        else:
            fig = ax.figure
        _draw_boundary(ax, prob, extent, np.asarray(X), y)
        if title:
            ax.set_title(title)
    return fig


def boundary_panels(probs: dict, extent, X, y, *, columns: int = 4, size: float | None = None):
    """Return a figure of decision boundaries side by side: one panel per (title → P(y=1) grid).

    The figure is as wide as the book's column, so its text keeps its size on the page.
    """
    size = size or COLUMN_INCHES / columns
    rows = max(1, -(-len(probs) // columns))
    with plt.rc_context(_BOOK):
        fig, axes = plt.subplots(
            rows, columns, figsize=(size * columns, size * rows), squeeze=False
        )
        for ax, (title, prob) in zip(axes.flat, probs.items(), strict=False):
            _draw_boundary(ax, prob, extent, np.asarray(X), y)
            ax.set_title(title)
            ax.label_outer()
        for ax in axes.flat[len(probs) :]:
            ax.set_axis_off()
        fig.tight_layout()
    return fig


def animate_boundary(
    frames: np.ndarray,
    extent,
    X,
    y,
    titles: Sequence[str],
    *,
    interval: int = 120,
    figsize: tuple[float, float] = (3.0, 2.8),
    dpi: float | None = None,
):
    """Return a FuncAnimation of decision boundaries over training; frames has shape (T, n, n).

    ``figsize`` × ``dpi`` is the GIF's size in pixels: make it the size the page shows it at.
    """
    with plt.rc_context(_STYLE | ({"figure.dpi": dpi} if dpi else {})):
        fig, ax = plt.subplots(figsize=figsize)
        image = _draw_boundary(ax, frames[0], extent, np.asarray(X), y)
        title = ax.set_title(titles[0])
        fig.tight_layout()

    def update(i):
        image.set_data(frames[i])
        title.set_text(titles[i])
        return image, title

    anim = FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)
    return anim


def animation_gif(anim: FuncAnimation, fps: int = 8) -> bytes:
    """Return the animation encoded as a looping GIF."""
    # PillowWriter writes to a path only, so go through a temporary file.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "anim.gif"
        anim.save(path, writer=PillowWriter(fps=fps))
        return path.read_bytes()


def figure_png(fig, dpi: int = 100) -> bytes:
    """Return the figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def gif_gallery(
    gifs: dict[str, bytes], fallback_png: bytes | None = None, columns: int = 4
) -> dict:
    """Return a display bundle: an HTML grid of captioned GIFs, with a PNG for non-HTML outputs.

    Pass it to ``IPython.display.display(bundle, raw=True)``. The HTML embeds the GIFs as data
    URIs, so the page needs no kernel, no file beside it and no network.
    """
    cells = "".join(
        f'<figure style="margin:0;text-align:center">'
        f'<img src="data:image/gif;base64,{base64.b64encode(data).decode()}" '
        f'style="width:100%" alt="{html.escape(name)}"/>'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, data in gifs.items()
    )
    grid = (
        f'<div style="display:grid;grid-template-columns:repeat({columns},minmax(0,1fr));'
        f'gap:6px">{cells}</div>'
    )
    bundle = {"text/html": grid}
    if fallback_png is not None:
        bundle["image/png"] = base64.b64encode(fallback_png).decode()
    return bundle


def image_grid(
    images: np.ndarray | torch.Tensor,
    titles: Sequence[str] | None = None,
    *,
    columns: int = 8,
    size: float = 1.3,
    cmap: str = "gray_r",
):
    """Return a figure of images, (N, H, W) or (N, C, H, W) with C in {1, 3}, one per axis.

    Each image is scaled to its own range for display, so normalised tensors can be passed as
    they are; ``titles`` label the images (for example "true → predicted"). Drawn at the
    book's 100 dpi, so ``size`` × ``columns`` inches is the width the page shows (at most
    ``COLUMN_INCHES``) and a title is 12.5 px there.
    """
    images = [display_image(image) for image in images]
    n = len(images)
    rows = max(1, -(-n // columns))
    with plt.rc_context(_BOOK):
        fig, axes = plt.subplots(
            rows, columns, figsize=(size * columns, size * rows * 1.15), squeeze=False
        )
        for i, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if i < n:
                show_image(ax, images[i], title=titles[i] if titles is not None else None,
                           cmap=cmap)  # fmt: skip
        fig.tight_layout()
    return fig


def display_image(
    image: np.ndarray | torch.Tensor, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Return one image, (H, W) or (C, H, W) with C in {1, 3}, as ``imshow`` takes it: (H, W) or
    (H, W, 3), in [0, 1]. ``value_range`` = (lo, hi) maps that range (``(-1, 1)`` for a GAN's
    tanh outputs) and clips; None stretches the image's own minimum and maximum."""
    image = torch.as_tensor(image).detach().float().cpu()
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else image.permute(1, 2, 0)
    lo, hi = value_range if value_range is not None else (image.min(), image.max())
    return ((image - lo) / max(float(hi - lo), 1e-8)).clamp(0, 1).numpy()


def show_image(
    ax,
    image: np.ndarray | torch.Tensor,
    *,
    value_range: tuple[float, float] | None = None,
    title: str | None = None,
    cmap: str = "gray_r",
):
    """Draw one image on ``ax`` (see :func:`display_image`), without ticks; return ``ax``.

    Single-channel images use ``cmap`` (dark ink on white by default); colour images their own
    colours."""
    shown = display_image(image, value_range) if not isinstance(image, np.ndarray) else image
    ax.imshow(shown, cmap=cmap if shown.ndim == 2 else None, vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[])
    if title is not None:
        ax.set_title(title)
    return ax
