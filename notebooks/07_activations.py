# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Activation functions: what the nonlinearity decides
#
# A small network fits the half-moon data with a dozen different nonlinearities, some of them
# strange: sines, exponentials, sorting a layer's outputs. We train the same 2→10→10→1 network with
# each, watch its decision boundary form, and ask which ones fail, why, and what the choice of
# nonlinearity changes when the fit succeeds.
#
# **What you will learn**
#
# - that almost any nonlinearity lets gradient descent fit a small two-dimensional problem, even
#   sorting;
# - why the sign function, 1/x and tan fail, read off the gradients during training;
# - that networks which fit the same data equally well still disagree away from it: the
#   nonlinearity decides how a network generalises.

# %% tags=["parameters"]
PROFILE = "quick"  # smoke: seconds (tests) | quick: minutes on a CPU | full
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0  # seeds the data, weights and all that is random [0, 4294967295]
N_SAMPLES = None  # half-moon points, train and test together [20, 1000000]
NOISE = 0.2  # std of the Gaussian noise make_moons adds to each point [0, 10]
TEST_SHARE = 0.3  # share of the points held out for testing (0, 1)
STEPS = None  # full-batch AdamW steps per activation [1, 1000000]
LR = 0.01  # AdamW learning rate (0, 1]
WEIGHT_DECAY = 0.01  # AdamW weight decay (PyTorch's default) [0, 1]
FRAMES = None  # boundary snapshots per activation (GIF frames) [1, 1000]
GRID = None  # grid points per axis for the decision boundary [2, 1000]
ACTIVATIONS = "all"  # comma-separated activation names to train, or "all"
SEEDS = None  # weights each verdict is taken over: SEED, SEED + 1, … [1, 100]

# %%
# Sizes per profile. A parameter set above (not None) wins over its profile.
PROFILES = {
    "smoke": {
        "N_SAMPLES": 200,
        "STEPS": 60,
        "FRAMES": 3,
        "GRID": 24,
        "SEEDS": 2,
    },
    "quick": {
        "N_SAMPLES": 1000,
        "STEPS": 3000,
        "FRAMES": 20,
        "GRID": 90,
        "SEEDS": 5,
    },
    "full": {
        "N_SAMPLES": 2000,
        "STEPS": 10000,
        "FRAMES": 40,
        "GRID": 140,
        "SEEDS": 5,
    },
}

from dlnotes.params import check_injected, from_profile

check_injected(
    In
)  # under plain papermill: refuse unknown parameters and out-of-range values

N_SAMPLES, STEPS, FRAMES, GRID, SEEDS = from_profile(
    PROFILES,
    PROFILE,
    N_SAMPLES=N_SAMPLES,
    STEPS=STEPS,
    FRAMES=FRAMES,
    GRID=GRID,
    SEEDS=SEEDS,
)

# %% [markdown]
# ## Setup
#
# The helpers come from `dlnotes`: device and seed selection, a plain training loop, and the
# plotting of decision boundaries. Everything random flows from `SEED`.

# %%
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import display
from matplotlib_inline.backend_inline import set_matplotlib_formats
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from torch import nn

from dlnotes.env import pick_device, seed_everything
from dlnotes.explore import (
    boundary_uri,
    choice,
    explorer,
    show,
    slider,
    uri_bytes,
)
from dlnotes.models import n_params
from dlnotes.report import lab_report_table, publish
from dlnotes.train import binary_accuracy, evaluate, fit
from dlnotes.viz import (
    animate_boundary,
    animation_gif,
    boundary_grid,
    boundary_panels,
    figure_png,
    gif_gallery,
    plot_boundary,
    predict_grid,
)

set_matplotlib_formats(
    "retina"
)  # figures at twice the pixels, shown at their size
device = pick_device(DEVICE)

# %% [markdown]
# ## The data
#
# Two interleaving half-moons with Gaussian noise, from scikit-learn. A straight line cannot
# separate them, so a network without a nonlinearity cannot fit them either: that makes the data a
# clean test of what a nonlinearity adds.

# %%
seed_everything(SEED)
X_np, y_np = make_moons(n_samples=N_SAMPLES, noise=NOISE, random_state=SEED)
X_train_np, X_test_np, y_train_np, y_test_np = train_test_split(
    X_np, y_np, test_size=TEST_SHARE, random_state=SEED, stratify=y_np
)
X_train = torch.tensor(X_train_np, dtype=torch.float32, device=device)
X_test = torch.tensor(X_test_np, dtype=torch.float32, device=device)
# Labels as (N, 1), the shape of the network's one output logit.
y_train = torch.tensor(y_train_np, dtype=torch.float32, device=device)[:, None]
y_test = torch.tensor(y_test_np, dtype=torch.float32, device=device)[:, None]
grid_points, extent = boundary_grid(X_np, n=GRID)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(4.5, 3.2))
ax.scatter(*X_train_np.T, c=y_train_np, cmap="coolwarm", s=8, label="train")
ax.scatter(
    *X_test_np.T, c=y_test_np, cmap="coolwarm", s=14, marker="x", label="test"
)
ax.set(
    xlabel="$x_1$",
    ylabel="$x_2$",
    title=f"make_moons: {len(X_train_np)} train, {len(X_test_np)} test",
)
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# ## One network, many nonlinearities
#
# The architecture stays fixed: two inputs, two hidden layers of ten units, one output logit. Only
# what happens between the linear layers changes. A pair such as `exp_cos` applies `exp` after the
# first hidden layer and `cos` after the second. Two entries are not functions of one unit at all:
#
# - **sort** sorts the ten outputs of the first layer, and uses no other nonlinearity;
# - **permute** reorders the second layer's outputs by the order of the first layer's.
#
# Both are piecewise linear: within a region of the plane where the order of the units does not
# change, the network is linear. `identity` is our addition, a control with no nonlinearity.

# %%
PAIRS = {
    "abs": (torch.abs, torch.abs),
    "exp": (torch.exp, torch.exp),
    "exp_cos": (torch.exp, torch.cos),
    "sin": (torch.sin, torch.sin),
    "square": (torch.square, torch.square),
    "relu": (torch.relu, torch.relu),
    "sigmoid": (torch.sigmoid, torch.sigmoid),
    "reciprocal": (torch.reciprocal, torch.reciprocal),  # 1/x
    "tan": (torch.tan, torch.tan),
    "sign": (torch.sign, torch.sign),
    "identity": (nn.Identity(), nn.Identity()),  # ours: the linear control
}
ALL = [*PAIRS][:7] + ["sort", "permute"] + [*PAIRS][7:]
# The lab report's verdicts; the linear control is ours.
REPORT = {
    n: "fails" if n in ("reciprocal", "tan", "sign") else "fits" for n in ALL
}
REPORT["identity"] = "(ours)"


class MLP(nn.Module):
    """2 → 10 → 10 → 1, a chosen nonlinearity between the linear layers."""

    def __init__(self, kind: str, hidden: int = 10):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(2, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 1)

    def hidden(self, x):
        """Return the two hidden representations, each (B, hidden)."""
        h = self.fc1(x)
        if self.kind == "sort":
            a1 = h.sort(dim=-1).values
            return a1, self.fc2(a1)
        if self.kind == "permute":
            order = h.argsort(dim=-1)
            return h, self.fc2(h).gather(-1, order)
        f, g = PAIRS[self.kind]
        a1 = f(h)
        return a1, g(self.fc2(a1))

    def forward(self, x):
        return self.fc3(self.hidden(x)[1])  # (B, 1) logits


names = (
    ALL
    if ACTIVATIONS == "all"
    else [a.strip() for a in ACTIVATIONS.split(",")]
)
unknown = sorted(set(names) - set(ALL))
assert not unknown, f"unknown activations {unknown}; choose from {ALL}"
print(MLP("relu"), "\nparameters:", n_params(MLP("relu")))

# %% [markdown]
# ## Training
#
# Each network trains on the whole training set at once (full-batch AdamW, binary cross-entropy on
# the logit) from the same initial weights. After every backward pass we record the gradient norm
# of each layer's weights and the largest hidden activation; at a few steps, spaced more densely
# early on when the boundary moves fastest, we store the predicted probability over a grid of the
# plane. Those snapshots become the animations.


# %%
def train_watched(name, train, val, grid, snapshots, *, seed, settings):
    """Train `name` full-batch, recording gradients, activations, boundary."""
    X, y = train
    seed_everything(seed)  # the same initial weights for every activation
    model = MLP(name).to(X.device)
    lr, wd = settings["lr"], settings["weight_decay"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    grads, peaks, frames, frame_steps = [], [], [], []

    def record(step, model):
        layers = (model.fc1, model.fc2, model.fc3)
        grads.append(torch.stack([m.weight.grad.norm() for m in layers]))
        with torch.no_grad():
            peaks.append(torch.stack([a.abs().max() for a in model.hidden(X)]))
        if step in snapshots:
            frames.append(predict_grid(model, grid))
            frame_steps.append(step)

    t0 = time.perf_counter()
    steps, loss_fn = settings["steps"], settings["loss_fn"]
    kw = dict(metric=binary_accuracy, val=val, progress=name)
    history = fit(
        model, opt, loss_fn, train, epochs=steps, after_backward=record, **kw
    )
    frames.append(predict_grid(model, grid))
    return {
        "model": model,
        "history": history,
        "seconds": time.perf_counter() - t0,
        "grad_norms": torch.stack(grads).cpu().numpy(),  # (steps, 3)
        "peaks": torch.stack(peaks).cpu().numpy(),  # (steps, 2)
        "frames": np.stack(frames),  # (len(snapshots) + 1, GRID, GRID)
        "frame_steps": [*frame_steps, steps],
    }


# %%
def snapshot_steps(steps: int, frames: int) -> list[int]:
    """Return the snapshot steps, denser early on, where the boundary moves."""
    if frames == 1:
        return [steps]
    return sorted(
        {round(steps * (i / (frames - 1)) ** 2) for i in range(frames)}
    )


loss_fn = nn.BCEWithLogitsLoss()
settings = dict(steps=STEPS, lr=LR, weight_decay=WEIGHT_DECAY, loss_fn=loss_fn)
snapshots = snapshot_steps(STEPS, FRAMES)
train, val = (X_train, y_train), (X_test, y_test)
start = time.perf_counter()
runs = {}
for name in names:
    runs[name] = train_watched(
        name, train, val, grid_points, snapshots, seed=SEED, settings=settings
    )
train_seconds = time.perf_counter() - start
print(f"trained {len(runs)} networks in {train_seconds:.1f} s")

# %% [markdown]
# ## Which nonlinearities fit the data?
#
# The table gives each network's final loss and accuracy. We call a run *fitted* when its training
# accuracy reaches 95%: with this much noise a handful of points sit on the wrong side of any
# sensible boundary, and a straight line stays near 86%.

# %%
FIT_THRESHOLD = 0.95
COLUMNS = ["lab report", "train acc", "test acc", "train loss", "test loss"]
COLUMNS += ["non-finite steps", "seconds"]
rows = {}
for name, run in runs.items():
    model, score = run["model"], dict(metric=binary_accuracy)
    train_loss, train_acc = evaluate(model, loss_fn, X_train, y_train, **score)
    test_loss, test_acc = evaluate(model, loss_fn, X_test, y_test, **score)
    nonfinite = int((~np.isfinite(run["history"]["train_loss"])).sum())
    accs, losses = [train_acc, test_acc], [train_loss, test_loss]
    rows[name] = [REPORT[name], *accs, *losses, nonfinite, run["seconds"]]
frame = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
results = frame.rename_axis("activation")
display(results.style.format(precision=3).format("{:.1f}", subset=["seconds"]))

# %% tags=["hide-input"]
metrics = publish(
    **{f"train_acc_{n}": results.loc[n, "train acc"] for n in results.index},
    **{f"test_acc_{n}": results.loc[n, "test acc"] for n in results.index},
    # An overflowed network's loss is NaN; published as infinite.
    **{
        f"test_loss_{n}": np.nan_to_num(
            results.loc[n, "test loss"], nan=np.inf
        )
        for n in results.index
    },
    **{
        f"nonfinite_steps_{n}": results.loc[n, "non-finite steps"]
        for n in results.index
    },
    train_seconds=train_seconds,
    steps=STEPS,
    n_train=len(X_train_np),
)

# %% [markdown]
# One run decides little for a network that ends near the threshold: another starting point, or the
# rounding of another processor, can put it on the other side. So every network is trained again
# from {glue:text}`n_seeds_extra:d` more sets of initial weights (seeds `SEED + 1`, `SEED + 2`, …; the
# data stay the same), and a nonlinearity counts as *fitting* when most of its runs reach the
# threshold.


# %%
def final_train_acc(name, X, y, *, seed, settings):
    """Return the training accuracy of `name`'s network from `seed`."""
    seed_everything(seed)
    model = MLP(name).to(X.device)
    lr, wd = settings["lr"], settings["weight_decay"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    loss_fn, steps = settings["loss_fn"], settings["steps"]
    fit(model, opt, loss_fn, (X, y), epochs=steps, progress=False)
    return evaluate(model, loss_fn, X, y, metric=binary_accuracy)[1]


seeds = range(SEED, SEED + SEEDS)
accs = {}
for n in runs:  # the first seed's run is the one above
    again = [
        final_train_acc(n, *train, seed=s, settings=settings)
        for s in seeds[1:]
    ]
    accs[n] = [results.loc[n, "train acc"], *again]
seed_accs = pd.DataFrame(accs, index=pd.Index(seeds, name="seed"))
fits = seed_accs >= FIT_THRESHOLD
results["fitted"] = fits.mean() > 0.5
verdicts = pd.DataFrame(
    {
        "lab report": results["lab report"],
        "runs that fit": fits.sum().map(lambda k: f"{k} of {SEEDS}"),
        "train acc, lowest": seed_accs.min(),
        "train acc, highest": seed_accs.max(),
        "verdict": np.where(results["fitted"], "fits", "fails"),
    }
)
display(verdicts.style.format(precision=3))

# %% tags=["hide-input"]
# Counts over the report's twelve activations (our linear control left out).
report_names = [n for n in runs if n != "identity"]
report_fits = pd.Series({n: REPORT[n] == "fits" for n in report_names})
per_seed_fitted = fits[report_names].sum(axis=1)
per_seed_agree = (fits[report_names] == report_fits).sum(axis=1)
verdict_metrics = publish(
    **{f"fit_share_{n}": fits[n].mean() for n in runs},
    n_seeds=SEEDS,
    n_seeds_extra=SEEDS - 1,
    n_activations=len(report_names),
    n_fitted=int(results.loc[report_names, "fitted"].sum()),
    n_fitted_every_seed=int(fits[report_names].all().sum()),
    n_fitted_some_seed=int(fits[report_names].any().sum()),
    n_fitted_min=int(per_seed_fitted.min()),
    n_fitted_max=int(per_seed_fitted.max()),
    n_agree_with_report=int(
        (results.loc[report_names, "fitted"] == report_fits).sum()
    ),
    n_agree_min=int(per_seed_agree.min()),
    n_agree_max=int(per_seed_agree.max()),
)

# %% [markdown]
# Of the lab report's {glue:text}`n_activations:d` activations, {glue:text}`n_fitted:d` fit from
# most starting points ({glue:text}`n_fitted_every_seed:d` from every one of the
# {glue:text}`n_seeds:d`, {glue:text}`n_fitted_some_seed:d` from at least one); a single seed would
# have said between {glue:text}`n_fitted_min:d` and {glue:text}`n_fitted_max:d`. Taken over the
# seeds, {glue:text}`n_agree_with_report:d` verdicts agree with the report's (a single seed:
# {glue:text}`n_agree_min:d` to {glue:text}`n_agree_max:d`). In the first run ReLU ends at
# {glue:text}`test_acc_relu:.1%` test accuracy, sorting at {glue:text}`test_acc_sort:.1%`, the sign
# function at {glue:text}`test_acc_sign:.1%`, and our linear control at
# {glue:text}`test_acc_identity:.1%`.
#
# The final decision boundaries of the first run side by side: blue for class 0, red for class 1,
# ten bands of predicted probability, the training points on top.

# %% tags=["hide-input"]
final = {
    f"{n}: test {results.loc[n, 'test acc']:.1%}": run["frames"][-1]
    for n, run in runs.items()
}
fig = boundary_panels(final, extent, X_train_np, y_train_np)
final_grid_png = figure_png(fig, dpi=48)  # the GIFs' fallback outside HTML
plt.show()

# %% [markdown]
# ## Watching the boundaries form
#
# Each animation plays the snapshots of one network, from its initial weights to the last step
# (the step counter is in the title): ReLU, sorting, and two of the failures. The explorer after
# them holds up to 20 snapshots of every network, spread over its training: pick an activation
# and move through its training, or press ▶ to play it.

# %% tags=["hide-input"]
# Four GIFs, one row: the explorer below plays every network's training.
gallery = [n for n in ("relu", "sort", "sign", "tan") if n in runs]
gifs = {}
for name in gallery or names[:4]:
    run = runs[name]
    titles = [f"{name}, step {s}" for s in run["frame_steps"]]
    # Four GIFs across the column: about 165 px each, drawn at that size.
    anim = animate_boundary(
        run["frames"],
        extent,
        X_train_np,
        y_train_np,
        titles,
        figsize=(2.3, 2.2),
        dpi=72,
    )
    gifs[name] = animation_gif(anim, fps=8)
display(gif_gallery(gifs, fallback_png=final_grid_png), raw=True)
print(
    f"{len(gifs)} GIFs, {sum(map(len, gifs.values())) / 1e6:.1f} MB together"
)

# %% [markdown]
# ### Explore the snapshots
#
# Pick an activation and move the slider: the boundary at that snapshot, with its step, training
# accuracy and loss underneath, and beside it the training and test loss of the whole run on a
# logarithmic axis, the dashed line at the step shown. A curve that stops has left the finite
# numbers. Everything comes from the snapshots this run stored, so the page needs no kernel: the
# folded cell below builds a table with one row per snapshot, the boundary as a small PNG, and
# `explorer` makes it a Vega-Lite chart whose controls pick a row. It keeps at most 20 snapshots
# of each network, evenly spread, the first and last included (the GIFs above show all of them):
# every snapshot of every network would weigh more than the whole page may.


# %% tags=["hide-input"]
def snapshot_table(runs, results, most=20):
    """One row per (activation, snapshot): step, accuracy, loss, boundary.

    At most `most` snapshots per activation, evenly spread, first and
    last kept.
    """
    rows = []
    for name, run in runs.items():
        h = run["history"]
        # A snapshot is taken before its step's update, so the step's values
        # are those of the weights shown; the last snapshot is the final model.
        accs = [*h["train_metric"], results.loc[name, "train acc"]]
        losses = [*h["train_loss"], results.loc[name, "train loss"]]
        count = len(run["frame_steps"])
        kept = np.unique(np.linspace(0, count - 1, min(most, count)).round())
        for i, frame in enumerate(kept.astype(int)):
            step = run["frame_steps"][frame]
            rows.append(
                {"activation": name, "snapshot": i, "step": step,
                 "train_acc": accs[step], "train_loss": losses[step],
                 "image": boundary_uri(run["frames"][frame])}
            )  # fmt: skip
    return pd.DataFrame(rows)


def loss_curves(runs, points=100):
    """Train and test loss of every run at about `points` steps (finite)."""
    parts = []
    for name, run in runs.items():
        h = run["history"]
        at = np.unique(
            np.linspace(0, len(h["train_loss"]) - 1, points).round()
        )
        # Training loss is taken before a step's update, test loss after it.
        for key, series, shift in (
            ("train_loss", "train", 0),
            ("val_loss", "test", 1),
        ):
            loss = np.asarray(h[key])[at.astype(int)]
            ok = np.isfinite(loss) & (loss > 0)
            parts.append(
                pd.DataFrame({"activation": name, "step": at[ok] + shift,
                              "loss": loss[ok], "series": series})
            )  # fmt: skip
    return pd.concat(parts, ignore_index=True)


# %% tags=["hide-input"]
snapshot_rows = snapshot_table(runs, results)
train_points = pd.DataFrame(
    {"x": X_train_np[:, 0], "y": X_train_np[:, 1], "label": y_train_np}
)
first = "relu" if "relu" in runs else names[0]
controls = [
    choice("activation", "activation", list(runs), value=first, menu=True),
    slider("snapshot", "snapshot", sorted(set(snapshot_rows["snapshot"]))),
]
caption = [("step", "step", "d"), ("train accuracy", "train_acc", ".1%")]
caption += [("loss", "train_loss", ".3f")]
curve = dict(x="step", y="loss", series="series", at="step", scale="log")
curve["title"] = "loss (log scale)"
show(
    explorer(
        snapshot_rows,
        controls,
        caption=caption,
        points=train_points,
        extent=extent,
        curves=loss_curves(runs),
        curve=curve,
        size=(270, 270),
        title="Decision boundary and loss during training",
    )
)
image_kb = sum(map(uri_bytes, snapshot_rows["image"])) / 1e3
print(f"{len(snapshot_rows)} snapshots, {image_kb:.0f} kB of boundary images")


# %% tags=["remove-cell"]
def show_snapshot(activation, snapshot):
    run = runs[activation]
    index = min(snapshot, len(run["frames"]) - 1)
    title = f"{activation}, step {run['frame_steps'][index]}"
    plot_boundary(
        run["frames"][index], extent, X_train_np, y_train_np, title=title
    )
    plt.show()


# interact_manual draws only when the button is pressed: a widget that draws
# while the cell runs can deadlock papermill's client (jupyter/nbclient#312),
# and this chapter's run hung on it once.
widgets.interact_manual(
    show_snapshot,
    activation=widgets.Dropdown(options=list(runs), description="activation"),
    snapshot=widgets.IntSlider(
        min=0, max=len(snapshots), value=len(snapshots), description="snapshot"
    ),
)

# %% [markdown]
# ## Why three of them fail
#
# The gradient norms recorded at every step tell the story. The plot shows each layer's weight
# gradient for the three failures next to ReLU and sigmoid; a curve that vanishes from the
# logarithmic axis is exactly zero.

# %% tags=["hide-input"]
focus = [
    n for n in ["relu", "sigmoid", "sign", "reciprocal", "tan"] if n in runs
]
grads = pd.concat(
    pd.DataFrame(
        {
            "step": np.arange(len(runs[n]["grad_norms"])),
            "layer": f"fc{k + 1}",
            "gradient norm": runs[n]["grad_norms"][:, k],
            "activation": n,
        }
    )
    for n in focus
    for k in range(3)
)
grads = grads[
    np.isfinite(grads["gradient norm"]) & (grads["gradient norm"] > 0)
]
g = sns.relplot(
    data=grads,
    x="step",
    y="gradient norm",
    hue="activation",
    col="layer",
    kind="line",
    height=2.3,
    aspect=0.95,
    linewidth=0.8,
    errorbar=None,
)
g.set(yscale="log")
sns.move_legend(
    g, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(focus), title=None
)
plt.show()

# %% tags=["hide-input"]
grad = {
    n: run["grad_norms"] for n, run in runs.items()
}  # (steps, 3) per network
summary = pd.DataFrame(
    {
        "fc1 grad = 0 (share of steps)": {
            n: (g[:, 0] == 0).mean() for n, g in grad.items()
        },
        "fc2 grad = 0 (share of steps)": {
            n: (g[:, 1] == 0).mean() for n, g in grad.items()
        },
        "median fc1 grad": {n: np.nanmedian(g[:, 0]) for n, g in grad.items()},
        "max fc1 grad": {n: np.nanmax(g[:, 0]) for n, g in grad.items()},
        "max |hidden|": {
            n: np.nanmax(run["peaks"]) for n, run in runs.items()
        },
    }
).astype(float)
display(summary.style.format("{:.3g}"))

# %% tags=["hide-input"]
grad_metrics = publish(
    **{
        f"zero_grad_share_fc1_{n}": summary.loc[
            n, "fc1 grad = 0 (share of steps)"
        ]
        for n in summary.index
    },
    **{
        f"max_grad_fc1_{n}": summary.loc[n, "max fc1 grad"]
        for n in summary.index
    },
    **{
        f"max_hidden_{n}": summary.loc[n, "max |hidden|"]
        for n in summary.index
    },
)


# %% [markdown]
# - **sign**: the derivative of `sign` is zero everywhere it is defined, so autograd passes no
#   gradient through it. The first two layers never move (their gradient is zero in
#   {glue:text}`zero_grad_share_fc1_sign:.0%` of the steps); only the output layer learns, and it
#   can only reweight the fixed regions that the random first layers cut the plane into.
# - **1/x**: near a unit whose input crosses zero, `1/x` and its derivative `-1/x²` explode. The
#   largest first-layer gradient reached {glue:text}`max_grad_fc1_reciprocal:.3g`, against
#   {glue:text}`max_grad_fc1_relu:.3g` for ReLU, and the largest hidden activation
#   {glue:text}`max_hidden_reciprocal:.3g` (`inf`: past the largest float32); the loss was not a
#   number in {glue:text}`nonfinite_steps_reciprocal:,d` of the {glue:text}`steps:,d` steps. The
#   function jumps from −∞ to +∞ at every such crossing, so the boundary is torn apart wherever a
#   unit changes sign.
# - **tan** has the same kind of poles, at every odd multiple of π/2, and composes two layers of
#   them: its largest hidden activation was {glue:text}`max_hidden_tan:.3g`.
#
# Large activations alone do not break training, but they leave it little room. `exp` composed
# twice is smooth and keeps its sign, and over a short training it fits: in the report's animation,
# and from every starting point at this chapter's `quick` profile (3,000 steps). In float32,
# though, exp(x) is infinite for x above about 88.7, and once an activation overflows the loss is
# not a number and training is over. Training pushes the weights, and with them the activations,
# towards that edge. The table's "non-finite steps" column counts such steps: in this run of
# {glue:text}`steps:,d` steps, {glue:text}`nonfinite_steps_exp:,d` for `exp` from the first
# starting point (largest hidden activation {glue:text}`max_hidden_exp:.3g`), and over all of them
# {glue:text}`fit_share_exp:.0%` of the `exp` networks still fit at the end. Where the report's
# verdict for `exp` and ours differ, the length of training decides it; the report does not give
# its number of steps. What breaks 1/x and tan is different: the pole, where a tiny change of the
# input flips an enormous output from one sign to the other.
#
# Adam normalises each update by a running gradient scale, so a single huge gradient does not throw
# the weights far. The damage is done in the forward pass: any input near a pole gets an enormous,
# sign-flipping output, and such points move with every step.

# %% [markdown]
# ## What does the nonlinearity decide?
#
# The lab report concluded that the activation mainly decides how a network *generalises*, while
# the power to fit the training data comes from backpropagation. We can test the first half
# directly: take the networks of the first run that fit, and measure how often they agree with each
# other on the test points (drawn from the same distribution as the training data) and on points
# far from any training data.

# %%
fitted = [n for n in runs if fits.loc[SEED, n]]
rng = np.random.default_rng(SEED)
far = rng.uniform([-6, -6], [7, 6], size=(20000, 2))
# Keep the points at least one unit from every fifth training point.
dist = np.sqrt(
    ((far[:, None, :] - X_train_np[None, ::5, :]) ** 2).sum(-1)
).min(1)
far = torch.tensor(far[dist > 1.0], dtype=torch.float32, device=device)


@torch.inference_mode()
def agreement(models: dict, points) -> pd.DataFrame:
    """Return the share of `points` on which each pair of models agrees."""
    preds = {
        n: (m(points) > 0).reshape(-1).cpu().numpy() for n, m in models.items()
    }
    return pd.DataFrame(
        {a: {b: (preds[a] == preds[b]).mean() for b in preds} for a in preds}
    )


models = {n: runs[n]["model"] for n in fitted}
near_agree, far_agree = agreement(models, X_test), agreement(models, far)

# %% tags=["hide-input"]
if len(fitted) > 1:
    fig, axes = plt.subplots(1, 2, figsize=(6.8, 3.2), sharey=True)
    for ax, table, title in [
        (axes[0], near_agree, "test points"),
        (axes[1], far_agree, "far from the data"),
    ]:
        sns.heatmap(
            table,
            vmin=0.5,
            vmax=1,
            cmap="viridis",
            ax=ax,
            cbar=ax is axes[1],
            cbar_kws={"label": "share of points, same class"},
        )
        ax.set(title=f"agreement on {title}", xlabel=None, ylabel=None)
    fig.tight_layout()
    plt.show()
else:
    print(f"{len(fitted)} network(s) fit in this run: agreement needs two")

# %% tags=["hide-input"]
off_diagonal = ~np.eye(len(fitted), dtype=bool)
with torch.inference_mode():
    nonfinite_far = {
        n: float((~torch.isfinite(run["model"](far))).float().mean())
        for n, run in runs.items()
    }
pairs = len(fitted) > 1
agreement_metrics = publish(
    n_far_points=len(far),
    agree_near=float(near_agree.values[off_diagonal].mean())
    if pairs
    else np.nan,
    agree_far=float(far_agree.values[off_diagonal].mean())
    if pairs
    else np.nan,
    agree_far_min=float(far_agree.values[off_diagonal].min())
    if pairs
    else np.nan,
    # Share of far points where a network's logit is not finite (overflow).
    **{f"nonfinite_far_{n}": share for n, share in nonfinite_far.items()},
)

# %% [markdown]
# Zoomed out to the whole square the far points were drawn from, the fitted networks look like
# this (the data sits in the middle):

# %% tags=["hide-input"]
wide_points, wide_extent = boundary_grid(
    np.array([[-6.0, -6.0], [7.0, 6.0]]), n=GRID, pad=0.0
)
wide = {n: predict_grid(runs[n]["model"], wide_points) for n in fitted}
boundary_panels(wide, wide_extent, X_train_np, y_train_np)
plt.show()

# %% [markdown]
# On the test points the fitted networks agree on {glue:text}`agree_near:.1%` of predictions on
# average. On {glue:text}`n_far_points:d` points at least one unit away from every training point
# they agree on only {glue:text}`agree_far:.1%`, and the least similar pair on
# {glue:text}`agree_far_min:.1%`, no better than tossing a coin. The zoomed-out view shows why.
# The networks with `sin` or `cos` in them oscillate faster and faster away from the data, so far
# out their predictions look like noise. ReLU, sort, permute and sigmoid networks cut the far plane
# into a few large regions with nearly straight borders, and agree with each other much more than
# with the rest. The square network's boundary is a conic. An `exp` network overflows far from the
# data even when it fits (in a run where it does, a pale region in its panel: the logit is not a
# number there and counts as class 0); this run's first `exp` network, whose weights overflowed in
# training and which is therefore not drawn, gives no number on
# {glue:text}`nonfinite_far_exp:.1%` of the far points.
#
# Where the data pins the function down, every nonlinearity that can bend the boundary finds nearly
# the same one; away from the data each continues in its own way. So the report's reading holds on
# this data: gradient descent finds a fit with almost any nonlinearity that passes useful gradients,
# and the nonlinearity decides the extrapolation.

# %% [markdown]
# ## Lab report and this run
#
# The report listed which activations fit the data but gave no accuracies, so the comparison is
# by verdict (the table of verdicts above gives each activation's); ours are taken over the
# seeds, at the profile and on the device the line under the title names.

# %%
published = metrics | verdict_metrics | grad_metrics | agreement_metrics
display(lab_report_table("07_activations", published))

# %% [markdown]
# ## Summary
#
# - Taken over {glue:text}`n_seeds:d` starting points, {glue:text}`n_fitted:d` of the report's
#   {glue:text}`n_activations:d` nonlinearities fit two half-moons with a 2→10→10→1 network,
#   sorting and reordering included, and {glue:text}`n_agree_with_report:d` of the verdicts match
#   the report's; one seed alone gives between {glue:text}`n_fitted_min:d` and
#   {glue:text}`n_fitted_max:d`. A network without a nonlinearity does not fit.
# - The failures have visible causes in the run: zero gradients through `sign`, exploding
#   activations at the poles of 1/x and tan, and for `exp`, which fits over a short training, an
#   overflow of float32 when training runs long.
# - Networks that fit agree where the data is and disagree away from it: the nonlinearity shapes
#   the extrapolation, not the ability to fit.
#
# To rerun with other settings: `dlnotes run 07_activations --profile full -p LR 0.003`, or
# `papermill notebooks/07_activations.ipynb out.ipynb -p STEPS 5000`.
