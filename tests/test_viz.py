import io

import numpy as np
import torch
from PIL import Image
from torch import nn

from dlnotes.viz import (
    animate_boundary,
    animation_gif,
    boundary_grid,
    figure_png,
    gif_gallery,
    image_grid,
    plot_boundary,
    predict_grid,
)


def test_boundary_grid_covers_the_data_with_padding():
    X = np.array([[0.0, 0.0], [1.0, 2.0]])
    points, extent = boundary_grid(X, n=5, pad=0.5)
    assert points.shape == (25, 2)
    assert extent == (-0.5, 1.5, -0.5, 2.5)
    assert points[0].tolist() == [-0.5, -0.5] and points[-1].tolist() == [1.5, 2.5]
    assert points[1, 1] == points[0, 1]  # row-major: x varies fastest


def test_predict_grid_returns_probabilities_on_the_grid():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[10.0, 0.0]]))
        model.bias.zero_()
    points, _ = boundary_grid(np.array([[-1.0, -1.0], [1.0, 1.0]]), n=4, pad=0)
    prob = predict_grid(model, points)
    assert prob.shape == (4, 4) and prob.min() >= 0 and prob.max() <= 1
    assert (prob[:, 0] < 0.01).all() and (prob[:, -1] > 0.99).all()  # left class 0, right class 1


def test_animation_gif_has_one_frame_per_snapshot():
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    frames = np.random.default_rng(1).uniform(size=(3, 8, 8))
    anim = animate_boundary(frames, (-2, 2, -2, 2), X, y, ["a", "b", "c"])
    data = animation_gif(anim, fps=4)
    assert data[:6] == b"GIF89a"
    assert Image.open(io.BytesIO(data)).n_frames == 3


def test_plot_boundary_and_gallery_bundle():
    X, y = np.zeros((2, 2)), np.array([0, 1])
    fig = plot_boundary(np.full((4, 4), 0.5), (-1, 1, -1, 1), X, y, title="t")
    png = figure_png(fig)
    assert png[:4] == b"\x89PNG" and fig.axes[0].get_title() == "t"
    bundle = gif_gallery({"relu <1>": b"GIF89a-fake"}, fallback_png=png, columns=3)
    assert "data:image/gif;base64,R0lGODlhLWZha2U=" in bundle["text/html"]
    assert "relu &lt;1&gt;" in bundle["text/html"] and "repeat(3," in bundle["text/html"]
    assert set(bundle) == {"text/html", "image/png"}


def test_image_grid_lays_out_images_with_titles_and_blank_spares():
    images = torch.zeros(5, 1, 4, 4)
    images[:, :, 0, 0] = torch.arange(5).float()[:, None]  # each image a different range
    fig = image_grid(images, [f"img {i}" for i in range(5)], columns=3)
    axes = fig.axes
    assert len(axes) == 6  # two rows of three
    shown = [ax for ax in axes if ax.images]
    assert [ax.get_title() for ax in shown] == [f"img {i}" for i in range(5)]
    data = shown[3].images[0].get_array()
    assert data.shape == (4, 4) and data.max() == 1.0 and data.min() == 0.0  # own range, scaled
    assert not axes[5].images  # the spare axis stays empty
    rgb = image_grid(torch.rand(2, 3, 4, 4), columns=2)
    assert rgb.axes[0].images[0].get_array().shape == (4, 4, 3)
