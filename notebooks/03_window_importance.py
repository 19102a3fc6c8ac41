# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3 · Window importance made visible
#
# MixA-Q ranks the attention windows of every Swin stage by an importance score and sends the
# least important ones to the low-bit branch (or prunes them). The score is SparseViT's: the mean
# |activation| of each token of the stage input, then the L2 norm over each window's tokens.
# Regular blocks use the regular window grid, shifted blocks the grid rolled by half a window.
#
# This notebook runs the embedded default detector (`swin_micro` FCOS, 256×256) converted to the
# two-branch form on a few synthetic images and shows, per stage, the importance heat map and the
# high / low / pruned assignment of the windows. It then checks the picture against the model:
#
# - pruned windows pass through their block unchanged, so the block's output must equal its input
#   exactly on the windows the picture calls *pruned* (and differ elsewhere);
# - in threshold mode the per-image window counts depend on the importance values themselves, so
#   equal counts in the model's window record confirm the importance computed here.
#
# Public APIs only: `models` (conversion, calibration, mix, window record) and `models.detection`
# (evaluator, synthetic data). The importance itself is recomputed below from hooked stage inputs
# (the models package keeps its importance helpers private). `MIXAQ_NOTEBOOK_SMALL=1` shows fewer
# images.

# %%
import copy
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.patches import Patch, Rectangle

from mixaq.models import (MixConfig, QuantConfig, TwoBranchSwinBlock, assignment_from_record, calibrating, convert_swin,
                    get_record, reset_record, set_mix)
from mixaq.models.detection import DEFAULT_VAL, SYNTH_CLASSES, Evaluator, write_synthetic
from mixaq.simulator import WindowAssignment, estimate, window_counts

SMALL = os.environ.get("MIXAQ_NOTEBOOK_SMALL") == "1"
N_IMAGES, N_CALIB = (2, 4) if SMALL else (4, 16)
torch.set_num_threads(min(2, os.cpu_count() or 1))
workdir = Path(tempfile.mkdtemp(prefix="mixaq_nb03_"))

# A few images of the default val distribution (seed 2), rendered into a temp dir.
val = write_synthetic(workdir / "val", N_IMAGES + N_CALIB, seed=DEFAULT_VAL["seed"], image_hw=(256, 256),
                      generator=DEFAULT_VAL["generator"], progress=False)
ev = Evaluator(None, val, max_images=N_IMAGES, calib_images=N_CALIB)  # None: the embedded default model
arch = ev.arch
print(arch, "| input", ev.image_hw)
images = [ev.dataset.load_image(i) for i in ev.eval_ids]  # (3, H, W) floats in [0, 1]
calib = [ev.dataset.load_image(i) for i in ev.calib_ids]

# %% [markdown]
# ## Convert, calibrate, mix
#
# W4 A8/A4 fake quantization; the observers see the calibration images (never shown below). The
# mix: in every block pair, the 20 % least important windows are pruned and the next 40 % run
# low-bit (`simulator.window_counts` turns ratios into counts, for the model and the cost model).

# %%
quant = QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4)
model = convert_swin(copy.deepcopy(ev.model), quant).eval()
with torch.no_grad(), calibrating(model):
    model(calib)

LOW_RATIO, PRUNE_RATIO = 0.4, 0.2
set_mix(model, MixConfig(mode="ratio", low_ratios=LOW_RATIO, prune_ratios=PRUNE_RATIO, strategy="importance"))

# Hook every converted block: its input and output, (B, H, W, C) each (timm Swin is NHWC).
blocks = [m for m in model.modules() if isinstance(m, TwoBranchSwinBlock)]
stage_of = [stage for stage, _ in arch.blocks()]  # execution order, like model.modules()
assert len(blocks) == arch.num_blocks
captured: dict[int, dict[str, torch.Tensor]] = {}


def hook(index: int):
    def save(module, args, output):
        captured[index] = {"x": args[0].detach(), "y": output.detach()}
    return save


handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
reset_record(model)
with torch.no_grad():
    detections = model(images)
record = get_record(model)
record.to_frame().head(8)

# %% [markdown]
# ## Importance, the way the model computes it
#
# Roll by −shift, zero-pad to window multiples, partition row-major, L2 norm per window. The stage's
# first block input is the stage input (after patch merging); both grids of a stage use it.


# %%
def to_windows(t: torch.Tensor, window: tuple[int, int], shift: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) per-token values -> (B, nWh, nWw, wh*ww) per window, in the block's window grid."""
    if any(shift):
        t = torch.roll(t, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    B, H, W = t.shape
    t = F.pad(t, (0, (-W) % window[1], 0, (-H) % window[0]))
    nh, nw = t.shape[1] // window[0], t.shape[2] // window[1]
    return t.reshape(B, nh, window[0], nw, window[1]).permute(0, 1, 3, 2, 4).reshape(B, nh, nw, -1)


def block_importance(index: int) -> torch.Tensor:
    """(B, nWh, nWw) window importance of block `index` (its stage's input, its own grid)."""
    first = stage_of.index(stage_of[index])
    magnitude = captured[first]["x"].abs().mean(-1)  # (B, H, W)
    b = blocks[index]
    return to_windows(magnitude, tuple(b.window_size), tuple(b.shift_size)).norm(dim=-1)


HIGH, LOW, PRUNED = 0, 1, 2


def ratio_labels(importance: torch.Tensor, low_ratio: float, prune_ratio: float) -> torch.Tensor:
    """(B, nWh, nWw) labels: the least important windows pruned, the next ones low (stable ties)."""
    B = importance.shape[0]
    flat = importance.reshape(B, -1)
    _, n_low, n_pruned = (int(v) for v in window_counts(flat.shape[1], low_ratio, prune_ratio))
    ranks = torch.argsort(torch.argsort(flat, dim=1, stable=True), dim=1)  # 0 = least important
    labels = torch.full_like(ranks, HIGH)
    labels[ranks < n_pruned + n_low] = LOW
    labels[ranks < n_pruned] = PRUNED
    return labels.reshape(importance.shape)


importance = {i: block_importance(i) for i in range(arch.num_blocks)}
labels = {i: ratio_labels(importance[i], LOW_RATIO, PRUNE_RATIO) for i in range(arch.num_blocks)}

# %% [markdown]
# **Check 1 — pruned windows are exactly the ones the picture says.** A pruned window skips the
# block, so the block's output equals its input there; every other window is changed by attention
# and the MLP.

# %%
rows = []
for i, b in enumerate(blocks):
    change = (captured[i]["y"] - captured[i]["x"]).abs().amax(-1)  # (B, H, W)
    per_window = to_windows(change, tuple(b.window_size), tuple(b.shift_size)).amax(-1)  # (B, nWh, nWw)
    pruned = labels[i] == PRUNED
    assert torch.all(per_window[pruned] == 0), f"block {i}: a window called pruned was changed"
    assert torch.all(per_window[~pruned] > 0), f"block {i}: a window called kept was unchanged"
    counts = torch.stack([(labels[i] == k).flatten(1).sum(1) for k in (HIGH, LOW, PRUNED)], 1).numpy()
    assert np.array_equal(counts, record.counts[:, i]), f"block {i}: counts differ from the record"
    rows.append({"block": i, "stage": stage_of[i], "shifted": any(b.shift_size), "windows": int(pruned[0].numel()),
                 "high": int(counts[0, 0]), "low": int(counts[0, 1]), "pruned": int(counts[0, 2])})
pd.DataFrame(rows).set_index("block")

# %% [markdown]
# ## The pictures
#
# Per image: the input with its ground-truth boxes and the detections of the mixed model, then per
# stage (the regular grid of the stage's first block) the window importance as a heat map and the
# window assignment over a grey copy of the image — clear = high-bit, orange = low-bit, dark =
# pruned. Windows are mapped back to input pixels through the block's roll and padding, so a
# shifted grid is drawn where its windows really are (wrapping around the edges).

# %%
stages = sorted(set(stage_of))
first_block = {s: stage_of.index(s) for s in stages}
LABEL_RGBA = np.array([(0, 0, 0, 0.0), (1.0, 0.5, 0.0, 0.6), (0.05, 0.05, 0.2, 0.8)])  # HIGH, LOW, PRUNED


def token_map(index: int, per_window: torch.Tensor) -> np.ndarray:
    """(nWh, nWw) values of block `index`'s windows -> (H, W) per token, in image coordinates."""
    b = blocks[index]
    H, W = captured[index]["x"].shape[1:3]
    wh, ww = b.window_size
    tokens = per_window.repeat_interleave(wh, 0).repeat_interleave(ww, 1)[:H, :W]  # rolled frame, padding cropped
    return torch.roll(tokens, shifts=tuple(b.shift_size), dims=(0, 1)).numpy()  # undo the block's roll


def window_borders(ax, index: int, image_hw: tuple[int, int]) -> None:
    b = blocks[index]
    H, W = captured[index]["x"].shape[1:3]
    px_h, px_w = image_hw[0] / H, image_hw[1] / W
    for k in range(0, H, b.window_size[0]):
        ax.axhline(((k + b.shift_size[0]) % H) * px_h, color="white", lw=0.4)
    for k in range(0, W, b.window_size[1]):
        ax.axvline(((k + b.shift_size[1]) % W) * px_w, color="white", lw=0.4)


def show_assignment(ax, index: int, n: int, grey: np.ndarray) -> None:
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    overlay = LABEL_RGBA[token_map(index, labels[index][n].long())]  # (H, W, 4)
    ax.imshow(overlay, extent=(0, grey.shape[1], grey.shape[0], 0), interpolation="nearest")
    window_borders(ax, index, grey.shape)


legend = [Patch(facecolor="none", edgecolor="grey", label="high-bit"),
          Patch(facecolor=LABEL_RGBA[LOW], label="low-bit"), Patch(facecolor=LABEL_RGBA[PRUNED], label="pruned")]
ann = ev.dataset.coco
for n, image_id in enumerate(ev.eval_ids):
    rgb = images[n].permute(1, 2, 0).numpy()
    grey = rgb.mean(-1)
    fig, axes = plt.subplots(2, 1 + len(stages), figsize=(3.2 * (1 + len(stages)), 6.6))
    axes[0, 0].imshow(rgb)
    for a in ann.imgToAnns[image_id]:
        x, y, w, h = a["bbox"]
        axes[0, 0].add_patch(Rectangle((x, y), w, h, fill=False, color="lime", lw=1))
        axes[0, 0].text(x, y, SYNTH_CLASSES[a["category_id"] - 1], color="lime", fontsize=6, va="bottom")
    axes[0, 0].set_title(f"image {image_id}: ground truth", fontsize=9)
    axes[1, 0].imshow(rgb)
    for box, score in zip(detections[n]["boxes"], detections[n]["scores"]):
        if score >= 0.4:
            x0, y0, x1, y1 = box.tolist()
            axes[1, 0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=1))
    axes[1, 0].set_title("mixed model's detections (score ≥ 0.4)", fontsize=9)
    for col, s in enumerate(stages, start=1):
        i = first_block[s]
        axes[0, col].imshow(grey, cmap="gray", vmin=0, vmax=1)
        heat = axes[0, col].imshow(token_map(i, importance[i][n]), extent=(0, grey.shape[1], grey.shape[0], 0),
                                   cmap="magma", alpha=0.8, interpolation="nearest")
        window_borders(axes[0, col], i, grey.shape)
        fig.colorbar(heat, ax=axes[0, col], fraction=0.046, pad=0.02)
        axes[0, col].set_title(f"stage {s}: window importance ({importance[i][n].numel()} windows)", fontsize=9)
        show_assignment(axes[1, col], i, n, grey)
        axes[1, col].set_title(f"stage {s}: high / low / pruned", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(handles=legend, loc="lower center", ncol=3, fontsize=8)
    plt.tight_layout(rect=(0, 0.04, 1, 1))
    plt.show()

# %% [markdown]
# The shifted block of a stage sees the same token magnitudes through a grid moved by half a
# window (timm rolls the map, so the windows at the right and bottom edges wrap around to the other
# side), so its assignment differs. Stage 0 of the first image, regular vs shifted block:

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
grey = images[0].permute(1, 2, 0).numpy().mean(-1)
for ax, i in zip(axes, (0, 1)):
    show_assignment(ax, i, 0, grey)
    ax.set_title(f"block {i}: shift {tuple(blocks[i].shift_size)} tokens", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.legend(handles=legend, loc="lower center", ncol=3, fontsize=8)
plt.tight_layout(rect=(0, 0.06, 1, 1))

# %% [markdown]
# On this small model the importance is nearly flat: relative to each image's mean window
# importance, the spread per block is narrow (quantiles below), so the heat maps are drawn on
# each panel's own colour range. (`docs/models.md` measures how poorly magnitude tracks objects on
# the default model; a longer-trained detector may separate windows more clearly.)

# %%
quantiles = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
pd.DataFrame([(lambda f: torch.quantile(f / f.mean(1, keepdim=True), quantiles, dim=1).mean(1))(
    importance[i].flatten(1)).numpy() for i in range(arch.num_blocks)],
    columns=[f"q{q:g}" for q in quantiles.tolist()]).rename_axis("block").round(3)

# %% [markdown]
# **Check 2 — the importance values match the model's.** In threshold mode a window is pruned when
# its importance is below `prune_threshold` × the image's mean window importance and low-bit below
# `low_threshold` ×; the per-image counts then depend on the values, not just on ratios.
# Thresholds close to 1 suit the narrow spread above.

# %%
LOW_T, PRUNE_T = 1.0, 0.95
set_mix(model, MixConfig(mode="threshold", low_thresholds=LOW_T, prune_thresholds=PRUNE_T))
reset_record(model)
with torch.no_grad():
    model(images)
threshold_record = get_record(model)
mine = []
for i in range(arch.num_blocks):
    # The hooks captured this forward's stage inputs (later stages see what earlier ones computed
    # under this mix, so they differ from the ratio-mode forward's).
    flat = block_importance(i).flatten(1)
    normalized = flat / flat.mean(1, keepdim=True)
    n_pruned = (normalized < PRUNE_T).sum(1)
    n_low = (normalized < LOW_T).sum(1) - n_pruned
    mine.append(torch.stack([flat.shape[1] - n_low - n_pruned, n_low, n_pruned], 1).numpy())
mine = np.stack(mine, 1)  # (images, blocks, 3)
assert np.array_equal(mine, threshold_record.counts), "importance differs from the model's"
print("threshold mode, windows (high, low, pruned) per block, image 0:", mine[0].tolist())

# %% [markdown]
# ## From the record to a cost
#
# What the model ran becomes the simulator's workload with `assignment_from_record` (per-block
# fractions, image means), costed like any other assignment:

# %%
for name, rec in (("ratio 0.4 low / 0.2 pruned", record), (f"threshold {LOW_T}/{PRUNE_T}", threshold_record)):
    assignment = assignment_from_record(rec, quant)
    cost = estimate("bitfusion", arch, ev.image_hw, assignment)
    ref = estimate("bitfusion", arch, ev.image_hw, WindowAssignment.uniform(arch, 8, 4))
    sp = cost.speedup_over(ref)
    print(f"{name}: low {np.round(assignment.low_fraction, 2).tolist()}, "
          f"pruned {np.round(assignment.pruned_fraction, 2).tolist()} -> "
          f"{sp['bops']:.2f}x BOPs, {sp['cycles']:.2f}x cycles on bitfusion")

# %%
import shutil

for h in handles:
    h.remove()
shutil.rmtree(workdir)
