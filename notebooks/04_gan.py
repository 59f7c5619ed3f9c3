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
# # Generative adversarial networks on MNIST: GAN, DCGAN, and how they fail
#
# A generative adversarial network trains two networks against each other. The **generator**
# turns random numbers into an image; the **discriminator** looks at an image and says whether it
# came from the training set or from the generator. Each learns from the other's mistakes, and if
# the game stays balanced the generator ends up drawing images the discriminator cannot tell from
# real ones. This chapter trains the GANs of two lab reports on handwritten digits and asks:
#
# 1. Can a generator made of fully connected layers learn to draw digits?
# 2. Does a convolutional GAN (DCGAN) train as the lab report says, and do the notes' rules of
#    thumb for a healthy run (discriminator loss 0.5–0.8, generator loss 0.5–2, discriminator
#    accuracy about 80%) hold?
# 3. What do the two classic failures, **mode collapse** and **convergence failure**, look like,
#    and which of the listed fixes help?
# 4. How can we measure the quality of generated digits without looking at them one by one?
#
# **What you will learn**
#
# - the GAN game, its two losses, and how to train it step by step;
# - transposed convolutions, and the DCGAN recipe;
# - how to read a GAN's training curves, and when they mislead;
# - a Fréchet distance and a class-coverage score computed with a classifier trained here.

# %% tags=["parameters"]
PROFILE = "quick"  # smoke: seconds, for tests | quick: minutes on a CPU | full: reports' scale
DEVICE = "auto"  # auto | cpu | cuda
SEED = 0  # seeds the data subset, initial weights, latent vectors and batch order [0, 4294967295]
STANDIN = None  # True: stand-in digits (sklearn, no dataset needed); None: profile's value
TRAIN_IMAGES = None  # MNIST training images the GANs learn from (of 60,000) [100, 60000]
LATENT = 100  # size of the latent vector z (notes: 100) [1, 10000]
BATCH = 64  # batch size (lab report: 64) [1, 60000]
LR = 0.0002  # Adam learning rate of both networks (lab report: 2e-4) (0, 1]
BETA1 = 0.5  # Adam's beta1 (lab report: 0.5) [0, 1)
GAN_EPOCHS = None  # epochs of the fully connected GAN [1, 1000]
DCGAN_EPOCHS = None  # epochs of the DCGAN (lab report: 20) [1, 1000]
DCGAN_WIDTH = None  # channels of the discriminator's first layer (generator: mirrored) [1, 1024]
STUDY_EPOCHS = None  # epochs of each failure-and-fix run [1, 1000]
CLF_EPOCHS = None  # epochs of the classifier that scores the generated digits [1, 1000]
N_SCORE = None  # generated images per model for the quality scores [100, 100000]
SNAPSHOTS = 12  # sample grids kept over the DCGAN's training (animation frames) [1, 1000]

# %%
# Sizes per profile. A parameter set above (not None) wins over its profile's value.
PROFILES = {
    "smoke": {
        "STANDIN": True,
        "TRAIN_IMAGES": 1500,
        "GAN_EPOCHS": 1,
        "DCGAN_EPOCHS": 1,
        "DCGAN_WIDTH": 8,
        "STUDY_EPOCHS": 1,
        "CLF_EPOCHS": 1,
        "N_SCORE": 500,
    },
    "quick": {
        "STANDIN": False,
        "TRAIN_IMAGES": 20000,
        "GAN_EPOCHS": 4,
        "DCGAN_EPOCHS": 15,
        "DCGAN_WIDTH": 16,
        "STUDY_EPOCHS": 2,
        "CLF_EPOCHS": 1,
        "N_SCORE": 5000,
    },
    "full": {
        "STANDIN": False,
        "TRAIN_IMAGES": 60000,
        "GAN_EPOCHS": 20,
        "DCGAN_EPOCHS": 20,
        "DCGAN_WIDTH": 64,
        "STUDY_EPOCHS": 5,
        "CLF_EPOCHS": 3,
        "N_SCORE": 10000,
    },
}

from dlnotes.params import check_injected, from_profile

check_injected(In)  # under plain papermill: refuse unknown parameters and out-of-range values

# fmt: off
(STANDIN, TRAIN_IMAGES, GAN_EPOCHS, DCGAN_EPOCHS, DCGAN_WIDTH, STUDY_EPOCHS, CLF_EPOCHS,
 N_SCORE) = from_profile(
    PROFILES, PROFILE, STANDIN=STANDIN, TRAIN_IMAGES=TRAIN_IMAGES, GAN_EPOCHS=GAN_EPOCHS,
    DCGAN_EPOCHS=DCGAN_EPOCHS, DCGAN_WIDTH=DCGAN_WIDTH, STUDY_EPOCHS=STUDY_EPOCHS,
    CLF_EPOCHS=CLF_EPOCHS, N_SCORE=N_SCORE,
)
# fmt: on

# %% [markdown]
# ## Setup
#
# PyTorch and the `dlnotes` helpers: the digits live in memory as one tensor scaled to [-1, 1],
# the range of the generator's tanh output. Everything random flows from `SEED`. The `quick`
# profile trains on a subset of MNIST with narrower convolutional networks for fewer epochs, so
# that the chapter runs in a few minutes on two CPU cores; `full` is the reports' scale.

# %%
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, display
from matplotlib.animation import FuncAnimation
from torch import nn
from torch.nn import functional as F
from torchvision.utils import make_grid
from tqdm.auto import tqdm

from dlnotes.data import load_images, standin_digits
from dlnotes.env import describe_device, pick_device, seed_everything
from dlnotes.models import Judge
from dlnotes.report import publish
from dlnotes.state import checkpoint_file, load_state, save_state
from dlnotes.train import Batches, accuracy, fit, frechet_distance, predict
from dlnotes.viz import show_image

device = pick_device(DEVICE)
print(f"profile {PROFILE}, device {describe_device(device)}, seed {SEED}")
if STANDIN:
    mnist = standin_digits(normalization="symmetric", device=device)
    print("stand-in data: sklearn digits replace MNIST (numbers mean nothing)")
else:
    mnist = load_images("mnist", normalization="symmetric", device=device, progress=False)
X_all, y_all = mnist["train"]
X_test, y_test = mnist["test"]
keep = torch.randperm(len(X_all), generator=torch.Generator().manual_seed(SEED))[:TRAIN_IMAGES]
X_train = X_all[keep.to(device)]
steps_per_epoch = len(X_train) // BATCH
print(f"{len(X_train):,} training images in [-1, 1], {steps_per_epoch} batches of {BATCH} an epoch")


def show_grid(images, title=None, columns=10, ax=None):
    """Draw digits in [-1, 1] as one grid (white background, dark ink, dark lines between)."""
    grid = make_grid(images.detach().float().cpu(), nrow=columns, padding=1, pad_value=1)
    return show_image(ax or plt.gca(), grid[0], value_range=(-1, 1), title=title)


# %% [markdown]
# ## A judge for generated digits
#
# Looking at samples is the first check, but comparing a dozen runs needs numbers. Here a small
# convolutional classifier, trained on the real digits, is the judge:
#
# - the **Fréchet distance** (FD) compares the distribution of its penultimate-layer features on
#   real test digits with that on generated ones, as the FID does with an ImageNet network:
#   $\lVert\mu_r-\mu_g\rVert^2 + \operatorname{tr}(\Sigma_r+\Sigma_g-2(\Sigma_r\Sigma_g)^{1/2})$;
#   lower is better, 0 means the same mean and covariance;
# - **class coverage** is the number of digit classes the generator actually draws, as the
#   exponential of the entropy of the predicted-class histogram: 10 when all ten digits appear
#   equally often, 1 when the generator draws a single digit (mode collapse);
# - **confident share** is the share of samples the judge classifies with probability above 0.9,
#   a rough measure of recognisable digits.
#
# Because the judge is trained here, these FDs are comparable within this chapter, not with FIDs
# published elsewhere.


# %%
gen = seed_everything(SEED)
# Two conv blocks (32, 64 channels) and a 64-feature layer; chapter 05 uses the same judge.
judge = Judge(1, 10, widths=(32, 64), size=28).to(device)
judge_history = fit(
    judge, torch.optim.Adam(judge.parameters(), 1e-3), F.cross_entropy, (X_all, y_all),
    epochs=CLF_EPOCHS, batch_size=128, metric=accuracy, generator=gen, progress="judge",
    checkpoint=checkpoint_file("04_gan-judge", {"epochs": CLF_EPOCHS, "seed": SEED,
                               "data": mnist.dataset, "size": 28}, code=[Judge, fit]),
)  # fmt: skip
judge.eval()
judge_acc = float(accuracy(predict(judge, X_test), y_test))


@torch.no_grad()
def judge_features(images, batch_size=1000):
    """Return (64 features, class probabilities) of the judge for images in [-1, 1]."""
    feats, probs = [], []
    for i in range(0, len(images), batch_size):
        f = judge.features(images[i : i + batch_size])
        feats.append(f.double().cpu())
        probs.append(judge.out(f).softmax(-1).cpu())
    return torch.cat(feats).numpy(), torch.cat(probs)


real_feats, real_probs = judge_features(X_test)


def quality(images):
    """Return FD to the real test digits, class coverage, confident share and class histogram."""
    feats, probs = judge_features(images)
    hist = np.bincount(probs.argmax(1).numpy(), minlength=10) / len(images)
    nonzero = hist[hist > 0]
    return {
        "FD": frechet_distance(feats, real_feats),
        "coverage": float(np.exp(-(nonzero * np.log(nonzero)).sum())),
        "confident": float((probs.max(1).values > 0.9).float().mean()),
        "hist": hist,
    }


reference = quality(X_train[: min(N_SCORE, len(X_train))])
judge_metrics = publish(
    judge_test_acc=judge_acc,
    judge_seconds=judge_history.last("seconds"),
    fd_real=reference["FD"],
    coverage_real=reference["coverage"],
)
print(
    f"judge: test accuracy {judge_acc:.2%}; real training digits score FD {reference['FD']:.2f}, "
    f"coverage {reference['coverage']:.2f}, confident {reference['confident']:.1%}"
)

# %% [markdown]
# The judge classifies {glue:text}`judge_test_acc:.2%` of the real test digits correctly. Real
# training digits, scored as if they were a generator's output, set the floor: an FD of
# {glue:text}`fd_real:.2f` (two samples of real digits never match exactly) and a coverage of
# {glue:text}`coverage_real:.2f` classes.
#
# ## The training loop
#
# One step of GAN training has two halves. The discriminator $D$ is trained to output 1 on a
# batch of real digits and 0 on a batch of generated ones; its loss is the sum of the two binary
# cross-entropies, as in PyTorch's DCGAN example and TensorFlow's tutorial. Then the generator $G$
# is trained to make $D$ output 1 on its images: the "non-saturating" loss
# $-\log D(G(z))$, which gives strong gradients when $D$ rejects the fakes. Both networks output
# logits and the loss applies the sigmoid (`binary_cross_entropy_with_logits`), which is the
# reports' sigmoid + BCE computed in one numerically stable step.
#
# The loop records, per step, both losses, $D(x)$ (the mean probability $D$ gives real digits),
# $D(G(z))$ and the discriminator's accuracy on the two batches. A run's state is saved after
# every epoch, so a rerun with the same parameters loads the finished networks and an interrupted
# run continues.


# %%
def init_dcgan(module):
    """DCGAN's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    return module


def train_gan(name, G, D, *, epochs, latent, lr_g=LR, lr_d=LR, real_label=1.0, fixed_z=None,
              snapshots=0, config=None, code=()):  # fmt: skip
    """Train G against D on X_train; return per-step curves and sample grids over training.

    ``real_label`` below 1 is one-sided label smoothing. The state is saved after every epoch,
    in a checkpoint keyed by ``config`` and the source of this loop and of ``code`` (the
    functions that built G and D).
    """
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=(BETA1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(BETA1, 0.999))
    config = {"name": name, "epochs": epochs, "latent": latent, "lr_g": lr_g,
              "lr_d": lr_d, "real": real_label, "n": len(X_train), "batch": BATCH, "seed": SEED,
              "data": mnist.dataset, **(config or {})}  # fmt: skip
    path = checkpoint_file(f"04_gan-{name}", config, code=[train_gan, *code])
    curves, grids, start = {k: [] for k in ("d_loss", "g_loss", "d_x", "d_gz", "d_acc")}, [], 0
    seconds = 0.0  # training time, summed over resumed runs
    gen = seed_everything(SEED)
    parts = {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d}
    saved = load_state(path, generators={"gen": gen}, map_location=device, **parts)
    if saved is not None:
        curves, grids, start = saved["curves"], saved["grids"], saved["epoch"]
        seconds = saved["seconds"]
    batches = Batches(X_train, torch.zeros(len(X_train), device=device), BATCH,
                      drop_last=True, generator=gen)  # fmt: skip
    total = epochs * len(batches)
    every = max(total // snapshots, 1) if snapshots else 0
    ones = torch.full((BATCH,), real_label, device=device)
    zeros, targets = torch.zeros(BATCH, device=device), torch.ones(BATCH, device=device)
    for epoch in tqdm(range(start, epochs), desc=name, leave=False):
        began = time.perf_counter()
        G.train(), D.train()
        stats = []
        for xb, _ in batches:
            z = torch.randn(BATCH, latent, device=device)
            fake = G(z)
            d_real, d_fake = D(xb), D(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                d_real, ones
            ) + F.binary_cross_entropy_with_logits(d_fake, zeros)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = F.binary_cross_entropy_with_logits(D(fake), targets)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            with torch.no_grad():
                p_real, p_fake = d_real.sigmoid(), d_fake.sigmoid()
                acc = ((p_real > 0.5).float().mean() + (p_fake < 0.5).float().mean()) / 2
                stats.append(torch.stack([d_loss, g_loss, p_real.mean(), p_fake.mean(), acc]))
            step = epoch * len(batches) + len(stats)
            if every and step % every == 0 and fixed_z is not None:
                G.eval()
                with torch.no_grad():
                    grids.append((step, G(fixed_z).cpu()))
                G.train()
        for key, column in zip(curves, torch.stack(stats).T.tolist(), strict=True):
            curves[key] += column
        seconds += time.perf_counter() - began
        save_state(path, curves=curves, grids=grids, epoch=epoch + 1, seconds=seconds,
                   generators={"gen": gen}, **parts)  # fmt: skip
    G.eval()
    return {"curves": curves, "grids": grids, "seconds": seconds}


@torch.no_grad()
def sample(G, n, latent, seed=SEED + 1):
    """Return n generated images from latent vectors drawn with their own seed."""
    g = torch.Generator(device=device).manual_seed(seed)
    G.eval()
    return torch.cat([G(torch.randn(min(1000, n - i), latent, device=device, generator=g))
                      for i in range(0, n, 1000)])  # fmt: skip


def smooth(values, window):
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


# %% [markdown]
# ## 1. A fully connected GAN
#
# The notes' first GAN is made of linear layers only. The generator widens a latent vector of
# {glue:text}`latent:d` numbers through 128, 256, 512 and 1,024 units, with batch normalisation
# and LeakyReLU (slope 0.2), to 784 pixels and a tanh; the discriminator narrows the 784 pixels
# through 512 and 256 units to one output. (The notes' code passes 0.8 as `BatchNorm1d`'s second
# argument, which is `eps`, not the momentum it looks like; we keep PyTorch's defaults.) Adam at
# {glue:text}`lr:.0e` with $\beta_1 = 0.5$ trains both.


# %%
def fc_generator(latent=LATENT):
    layers, dims = [], [latent, 128, 256, 512, 1024]
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers += [nn.Linear(a, b), *([nn.BatchNorm1d(b)] if k else []), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Linear(1024, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))


def fc_discriminator():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2),
                         nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1),
                         nn.Flatten(0))  # fmt: skip


fixed_z = torch.randn(40, LATENT, device=device, generator=torch.Generator(device).manual_seed(7))
seed_everything(SEED)
fc_G, fc_D = fc_generator().to(device), fc_discriminator().to(device)
fc_run = train_gan("fc", fc_G, fc_D, epochs=GAN_EPOCHS, latent=LATENT, fixed_z=fixed_z,
                   snapshots=4, code=[fc_generator, fc_discriminator])  # fmt: skip
rows = -(-len(fc_run["grids"]) // 2)
fig, axes = plt.subplots(rows, 2, figsize=(12, 2.6 * rows), squeeze=False)
for ax in axes.flat[len(fc_run["grids"]) :]:
    ax.axis("off")
for ax, (step, grid) in zip(axes.flat, fc_run["grids"], strict=False):  # one axis may be spare
    show_grid(grid[:20], title=f"step {step:,}", ax=ax)
plt.suptitle("fully connected GAN: the same 20 latent vectors over training")
plt.tight_layout()
plt.show()

# %% [markdown]
# Early on the generator draws grey blobs around the centre, where most ink is; the digit shapes
# appear as the discriminator learns to reject blobs. The quality scores of every model come
# together in section 4.
#
# ## 2. DCGAN
#
# The DCGAN recipe replaces the linear layers with convolutions. The generator starts from the
# latent vector as a 1×1 image and grows it with **transposed convolutions** (each one spreads
# every input pixel over a 4×4 patch of a twice larger output, a learnt upsampling): 1×1 → 7×7 →
# 14×14 → 28×28. The discriminator mirrors it with stride-2 convolutions instead of pooling.
# Batch normalisation sits in every layer but the generator's last and the discriminator's first;
# ReLU in the generator, LeakyReLU in the discriminator, tanh for the images; weights start at
# N(0, 0.02). The lab report trained it with batch 64 for 20 epochs (Adam 2e-4, $\beta_1$ 0.5) in
# 173 s on a GPU and ended at a generator loss of 1.069 and a discriminator loss of 1.133. Here
# the discriminator's first layer has {glue:text}`dcgan_width:d` channels (PyTorch's example: 64).


# %%
def dc_generator(latent=LATENT, width=DCGAN_WIDTH):
    G = nn.Sequential(
        nn.Unflatten(1, (latent, 1, 1)),
        nn.ConvTranspose2d(latent, 4 * width, 7, 1, 0, bias=False), nn.BatchNorm2d(4 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * width, 1, 4, 2, 1, bias=False), nn.Tanh(),
    )  # fmt: skip
    return G.apply(init_dcgan)


def dc_discriminator(width=DCGAN_WIDTH, spectral=False):
    """Strided convolutions down to one logit; ``spectral``: spectral norm instead of batch norm."""

    def wrap(conv):
        init_dcgan(conv)  # before the parametrisation, which then owns the weight
        return nn.utils.parametrizations.spectral_norm(conv) if spectral else conv

    def norm(channels):
        return nn.Identity() if spectral else init_dcgan(nn.BatchNorm2d(channels))

    return nn.Sequential(
        wrap(nn.Conv2d(1, width, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2),
        wrap(nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False)), norm(2 * width), nn.LeakyReLU(0.2),
        wrap(nn.Conv2d(2 * width, 1, 7, 1, 0, bias=False)), nn.Flatten(0),
    )  # fmt: skip


seed_everything(SEED)
dc_G, dc_D = dc_generator().to(device), dc_discriminator().to(device)
dc_run = train_gan("dcgan", dc_G, dc_D, epochs=DCGAN_EPOCHS, latent=LATENT, fixed_z=fixed_z,
                   snapshots=SNAPSHOTS, config={"width": DCGAN_WIDTH},
                   code=[dc_generator, dc_discriminator])  # fmt: skip
curves = dc_run["curves"]
last = slice(-max(len(curves["d_loss"]) // 5, 1), None)  # the last fifth of the steps
BANDS = {
    "discriminator loss": (0.5, 0.8),
    "generator loss": (0.5, 2.0),
    "discriminator accuracy": (0.7, 0.9),
}  # "about 0.8" read as 0.7–0.9
rules = pd.DataFrame(
    [
        ("discriminator loss", np.mean(curves["d_loss"][last]), "0.5–0.8", 1.133),
        ("generator loss", np.mean(curves["g_loss"][last]), "0.5–2", 1.069),
        ("discriminator accuracy", np.mean(curves["d_acc"][last]), "about 0.8", None),
        ("D(x)", np.mean(curves["d_x"][last]), "", None),
        ("D(G(z))", np.mean(curves["d_gz"][last]), "", None),
    ],
    columns=["measure (mean of the last fifth of the steps)", "this run", "notes' rule",
             "lab report (final)"],
).set_index("measure (mean of the last fifth of the steps)")  # fmt: skip
rules["rule met"] = [
    ("yes" if BANDS[name][0] <= value <= BANDS[name][1] else "no") if name in BANDS else ""
    for name, value in rules["this run"].items()
]
display(rules.style.format({"this run": "{:.3f}", "lab report (final)": "{:.3f}"}, na_rep="—"))

window = max(len(curves["d_loss"]) // 40, 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.6))
steps = np.arange(len(smooth(curves["d_loss"], window))) + window
ax1.axhspan(0.5, 0.8, color="tab:blue", alpha=0.12, label="rule: D loss 0.5–0.8")
ax1.axhspan(0.5, 2.0, color="tab:orange", alpha=0.07, label="rule: G loss 0.5–2")
ax1.plot(steps, smooth(curves["d_loss"], window), color="tab:blue", label="D loss")
ax1.plot(steps, smooth(curves["g_loss"], window), color="tab:orange", label="G loss")
ax1.set(xlabel="step", ylabel="loss (moving average)", title="DCGAN losses")
ax1.legend(fontsize=8)
ax2.axhline(0.8, color="gray", ls=":", label="rule: D accuracy about 0.8")
for key, label in (("d_x", "D(x)"), ("d_gz", "D(G(z))"), ("d_acc", "D accuracy")):
    ax2.plot(steps, smooth(curves[key], window), label=label)
ax2.set(xlabel="step", ylabel="probability / accuracy", ylim=(0, 1), title="the discriminator")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The animation replays the same 40 latent vectors at {glue:text}`snapshots:d` points of the
# DCGAN's training (the controls step through it without a kernel).

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))


def draw_frame(k):
    ax.clear()
    step, grid = dc_run["grids"][k]
    show_grid(grid, title=f"DCGAN samples, step {step:,} of {DCGAN_EPOCHS * steps_per_epoch:,}",
              ax=ax)  # fmt: skip


animation = FuncAnimation(fig, draw_frame, frames=len(dc_run["grids"]), interval=500)
display(HTML(animation.to_jshtml(default_mode="once")))
plt.close(fig)

dc_metrics = publish(
    latent=LATENT,
    lr=LR,
    snapshots=len(dc_run["grids"]),
    dcgan_width=DCGAN_WIDTH,
    dcgan_epochs=DCGAN_EPOCHS,
    dcgan_seconds=dc_run["seconds"],
    dcgan_d_loss=float(rules.loc["discriminator loss", "this run"]),
    dcgan_g_loss=float(rules.loc["generator loss", "this run"]),
    dcgan_d_acc=float(rules.loc["discriminator accuracy", "this run"]),
    dcgan_d_x=float(rules.loc["D(x)", "this run"]),
    dcgan_d_gz=float(rules.loc["D(G(z))", "this run"]),
    rule_d_loss_holds=rules.loc["discriminator loss", "rule met"] == "yes",
    rule_g_loss_holds=rules.loc["generator loss", "rule met"] == "yes",
    rule_d_acc_holds=rules.loc["discriminator accuracy", "rule met"] == "yes",
)

# %% [markdown]
# Over the last fifth of training the discriminator loss averages
# {glue:text}`dcgan_d_loss:.3f` and the generator loss {glue:text}`dcgan_g_loss:.3f` (the lab
# report's final values: 1.133 and 1.069); the discriminator is right on
# {glue:text}`dcgan_d_acc:.0%` of the images, giving real digits {glue:text}`dcgan_d_x:.2f` and
# generated ones {glue:text}`dcgan_d_gz:.2f` on average. Note what the rules measure: the losses
# are not a score to minimise, since each network's loss is low only when the other is losing.
# A balanced game keeps both in a band, which is what the notes' ranges describe; the table's
# last column says which of them this run meets (for the accuracy we read "about 80%" as
# 0.7–0.9). The quality of the digits is measured in section 4, not read from the losses.
#
# ## 3. Failure modes and fixes
#
# The notes name two ways a GAN fails. In **mode collapse** the generator finds a few images that
# fool the discriminator and draws only those: a batch of near-identical digits. The notes say a
# latent vector of size 1 makes it likely. In **convergence failure** the discriminator wins
# outright (its loss goes to 0) and the generator is left drawing noise; a too-high learning
# rate or too little capacity causes it. They list fixes: a lower learning rate, one-sided
# **label smoothing** (train the discriminator towards 0.9 instead of 1 on real digits), **TTUR**
# (two time-scale updates: discriminator 4e-4, generator 1e-4), and **spectral normalisation**
# of the discriminator's weights, which bounds how sharply it can react to its input (it replaces
# the discriminator's batch normalisation, as in the paper that introduced it).
#
# Every run below is the DCGAN of section 2, trained for {glue:text}`study_epochs:d` epochs from
# the same seed; only the named setting changes. To provoke instability we raise both networks'
# learning rate ten times and apply label smoothing and spectral normalisation at that rate; to
# provoke convergence failure through capacity, a generator with an eighth of the channels faces
# the full discriminator.

# %%
HIGH_LR = 10 * LR
STUDY = {
    "baseline (recipe)": dict(),
    "latent size 1": dict(latent=1),
    "high LR (10×)": dict(lr_g=HIGH_LR, lr_d=HIGH_LR),
    "high LR + label smoothing 0.9": dict(lr_g=HIGH_LR, lr_d=HIGH_LR, real_label=0.9),
    "high LR + spectral norm": dict(lr_g=HIGH_LR, lr_d=HIGH_LR, spectral=True),
    "weak generator (1/8 width)": dict(g_width=max(DCGAN_WIDTH // 8, 1)),
    "TTUR (D 4e-4, G 1e-4)": dict(lr_g=0.0001, lr_d=0.0004),
    "lower LR (1e-4)": dict(lr_g=0.0001, lr_d=0.0001),
}
study_runs, study_models = {}, {}
for name, change in tqdm(STUDY.items(), desc="study", leave=False):
    change = dict(change)
    latent, spectral = change.pop("latent", LATENT), change.pop("spectral", False)
    g_width = change.pop("g_width", DCGAN_WIDTH)
    seed_everything(SEED)
    G, D = dc_generator(latent, g_width).to(device), dc_discriminator(spectral=spectral).to(device)
    key = "study-" + "".join(c if c.isalnum() else "_" for c in name)
    study_runs[name] = train_gan(key, G, D, epochs=STUDY_EPOCHS, latent=latent,
                                 config={"width": DCGAN_WIDTH, "g_width": g_width,
                                         "spectral": spectral},
                                 code=[dc_generator, dc_discriminator], **change)  # fmt: skip
    study_models[name] = (G, latent)

fig, axes = plt.subplots(4, 2, figsize=(12, 8.4))
for ax, (name, (G, latent)) in zip(axes.flat, study_models.items(), strict=True):
    show_grid(sample(G, 30, latent), title=name, ax=ax)
plt.suptitle("30 samples from each run, same latent seed")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Measuring quality
#
# Every model generates {glue:text}`n_score:,d` digits from fresh latent vectors, and the judge
# scores them. The last column is the discriminator loss over the run's last fifth: the
# convergence-failure signature is a loss near 0.

# %%
models = {"fully connected GAN": (fc_G, LATENT), "DCGAN": (dc_G, LATENT), **study_models}
runs = {"fully connected GAN": fc_run, "DCGAN": dc_run, **study_runs}
scores = {name: quality(sample(G, N_SCORE, latent)) for name, (G, latent) in models.items()}
table = pd.DataFrame(
    {
        "epochs": [GAN_EPOCHS, DCGAN_EPOCHS] + [STUDY_EPOCHS] * len(STUDY),
        "FD ↓": [s["FD"] for s in scores.values()],
        "coverage (of 10) ↑": [s["coverage"] for s in scores.values()],
        "confident ↑": [s["confident"] for s in scores.values()],
        "D loss, last fifth": [
            np.mean(r["curves"]["d_loss"][-max(len(r["curves"]["d_loss"]) // 5, 1) :])
            for r in runs.values()
        ],
    },
    index=list(models),
)
display(
    table.style.format(
        {
            "epochs": "{:d}",
            "FD ↓": "{:.2f}",
            "coverage (of 10) ↑": "{:.2f}",
            "confident ↑": "{:.1%}",
            "D loss, last fifth": "{:.3f}",
        }  # fmt: skip
    )
)
fig, ax = plt.subplots(figsize=(12, 3.4))
hist = pd.DataFrame({name: s["hist"] for name, s in scores.items()}, index=range(10))
hist[["DCGAN", "baseline (recipe)", "latent size 1", "TTUR (D 4e-4, G 1e-4)"]].plot.bar(
    ax=ax, rot=0
)
ax.axhline(0.1, color="gray", ls=":", label="uniform")
ax.set(xlabel="digit the judge sees", ylabel="share of generated images",
       title="which digits the generators draw")  # fmt: skip
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()


def score(name, key):
    return float(scores[name][key])


quality_metrics = publish(
    n_score=N_SCORE,
    study_epochs=STUDY_EPOCHS,
    fd_fc=score("fully connected GAN", "FD"),
    fd_dcgan=score("DCGAN", "FD"),
    coverage_dcgan=score("DCGAN", "coverage"),
    confident_dcgan=score("DCGAN", "confident"),
    confident_fc=score("fully connected GAN", "confident"),
    fd_baseline=score("baseline (recipe)", "FD"),
    fd_latent1=score("latent size 1", "FD"),
    coverage_latent1=score("latent size 1", "coverage"),
    coverage_baseline=score("baseline (recipe)", "coverage"),
    fd_high_lr=score("high LR (10×)", "FD"),
    fd_smoothing=score("high LR + label smoothing 0.9", "FD"),
    fd_spectral=score("high LR + spectral norm", "FD"),
    fd_ttur=score("TTUR (D 4e-4, G 1e-4)", "FD"),
    fd_lower_lr=score("lower LR (1e-4)", "FD"),
    d_loss_high_lr=float(table.loc["high LR (10×)", "D loss, last fifth"]),
    d_loss_baseline=float(table.loc["baseline (recipe)", "D loss, last fifth"]),
    d_loss_weak=float(table.loc["weak generator (1/8 width)", "D loss, last fifth"]),
    fd_weak=score("weak generator (1/8 width)", "FD"),
    coverage_ttur=score("TTUR (D 4e-4, G 1e-4)", "coverage"),
    coverage_lower_lr=score("lower LR (1e-4)", "coverage"),
    n_fixes_better=sum(
        score(n, "FD") < score("high LR (10×)", "FD")
        for n in ("high LR + label smoothing 0.9", "high LR + spectral norm")
    ),
)
best = table["FD ↓"].idxmin()
print(f"lowest FD: {best} ({table.loc[best, 'FD ↓']:.2f}); real digits: {reference['FD']:.2f}")

# %% [markdown]
# What the table shows, run by run (all numbers from this run):
#
# - The DCGAN reaches an FD of {glue:text}`fd_dcgan:.2f` and draws
#   {glue:text}`coverage_dcgan:.1f` of 10 classes, with {glue:text}`confident_dcgan:.0%` of its
#   digits classified confidently; the fully connected GAN reaches {glue:text}`fd_fc:.2f` and
#   {glue:text}`confident_fc:.0%`.
# - **Latent size 1** squeezes every image onto one curve through image space: coverage
#   {glue:text}`coverage_latent1:.1f` against {glue:text}`coverage_baseline:.1f` for the same
#   run with 100 latent numbers, and an FD of {glue:text}`fd_latent1:.2f` against
#   {glue:text}`fd_baseline:.2f`.
# - **A ten times higher learning rate** ends at an FD of {glue:text}`fd_high_lr:.2f` against
#   the baseline's {glue:text}`fd_baseline:.2f`, with a discriminator loss of
#   {glue:text}`d_loss_high_lr:.3f` over the last fifth (baseline
#   {glue:text}`d_loss_baseline:.3f`): compare the two FDs to see whether the higher rate broke
#   the game or only sped it up in a run this short. At that rate, label smoothing scores
#   {glue:text}`fd_smoothing:.2f` and spectral normalisation {glue:text}`fd_spectral:.2f`;
#   {glue:text}`n_fixes_better:d` of the two improve on the high rate alone.
# - **The weak generator** leaves the discriminator a loss of {glue:text}`d_loss_weak:.3f` and
#   reaches an FD of {glue:text}`fd_weak:.2f`: the closer that loss is to 0, the more clearly the
#   discriminator has won, which is the convergence failure the notes describe.
# - **TTUR and the lower learning rate** slow the generator down (TTUR FD
#   {glue:text}`fd_ttur:.2f`, lower rate {glue:text}`fd_lower_lr:.2f`); at this budget they cover
#   {glue:text}`coverage_ttur:.1f` and {glue:text}`coverage_lower_lr:.1f` classes. A slower
#   generator needs more steps, and a run this short mostly measures speed; the `full` profile
#   gives every run more epochs.
#
# These are short runs of one seed each, so small differences in FD mean little; the
# histograms and the sample grids above show what the numbers summarise.
#
# ## Explore the latent space
#
# In a live notebook, the sliders move a point between two latent vectors (chosen by their
# seeds) and along the DCGAN's first four latent directions. Without a kernel, the strip below
# walks in ten steps from one sample to another: the digits change smoothly, which is a sign
# that the generator has learnt a continuous map rather than memorised training images.


# %%
def latent_of(seed):
    return torch.randn(
        1, LATENT, device=device, generator=torch.Generator(device).manual_seed(seed)
    )


@torch.no_grad()
def explore(seed_a=1, seed_b=2, t=0.0, dim0=0.0, dim1=0.0, dim2=0.0, dim3=0.0):
    z = (1 - t) * latent_of(seed_a) + t * latent_of(seed_b)
    z[0, :4] += torch.tensor([dim0, dim1, dim2, dim3], device=device)
    fig, ax = plt.subplots(figsize=(2.4, 2.4))
    show_grid(dc_G(z), columns=1, ax=ax, title=f"t = {t:.2f}")
    plt.show()


# %% tags=["remove-output"]
widgets.interact(
    explore,
    seed_a=widgets.IntSlider(1, 0, 99),
    seed_b=widgets.IntSlider(2, 0, 99),
    t=widgets.FloatSlider(0.0, min=0.0, max=1.0, step=0.05),
    **{f"dim{k}": widgets.FloatSlider(0.0, min=-3.0, max=3.0, step=0.25) for k in range(4)},
)

# %%
with torch.no_grad():
    ts = torch.linspace(0, 1, 10, device=device)[:, None]
    strips = torch.cat([dc_G((1 - ts) * latent_of(a) + ts * latent_of(b)) for a, b in
                        ((1, 2), (3, 4), (5, 6))])  # fmt: skip
fig, ax = plt.subplots(figsize=(10, 3.2))
show_grid(strips, columns=10, ax=ax, title="three walks between two latent vectors (DCGAN)")
plt.show()

# %% [markdown]
# ## Lab reports and this run
#
# The lab report gave losses and time for its DCGAN and no quality score; the notes gave rules of
# thumb. Our numbers come from the profile and device printed below. At the `quick` profile the
# DCGAN is narrower, sees {glue:text}`train_images:,d` training digits and trains for
# {glue:text}`dcgan_epochs:d` epochs instead of 20.

# %%
comparison = pd.DataFrame(
    [
        ("DCGAN generator loss (ours: last-fifth mean)", 1.069, dc_metrics["dcgan_g_loss"]),
        ("DCGAN discriminator loss (ours: last-fifth mean)", 1.133, dc_metrics["dcgan_d_loss"]),
        ("DCGAN training seconds", 172.98, dc_metrics["dcgan_seconds"]),
        ("DCGAN Fréchet distance (judge features)", None, quality_metrics["fd_dcgan"]),
        ("DCGAN class coverage (of 10)", None, quality_metrics["coverage_dcgan"]),
        ("latent size 1, class coverage", None, quality_metrics["coverage_latent1"]),
    ],
    columns=["experiment", "lab report", "this run"],
).set_index("experiment")
print(f"profile {PROFILE}, device {describe_device(device)}")
display(comparison.style.format("{:.3f}", na_rep="—"))
_ = publish(train_images=len(X_train))

# %% [markdown]
# ## Summary
#
# - A generator of linear layers learns to draw digits; the convolutional DCGAN draws sharper
#   ones at a lower Fréchet distance ({glue:text}`fd_dcgan:.2f` against {glue:text}`fd_fc:.2f`).
# - The losses describe the balance of the game, not the quality of the images; the notes'
#   bands are a health check, and the judge's scores are the measurement.
# - A one-number latent space collapses the generator onto a few digits, and the class-coverage
#   score shows it at once; the fixes for an unstable run are measured against the same budget.
#
# To rerun with other settings: `dlnotes run 04_gan --profile full`, or
# `dlnotes run 04_gan -p DCGAN_EPOCHS 20 -p DCGAN_WIDTH 64`, or
# `papermill notebooks/04_gan.ipynb out.ipynb -p LATENT 10`.
