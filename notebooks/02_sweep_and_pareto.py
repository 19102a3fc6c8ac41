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
# # 2 · Running a small sweep and reading its Pareto front
#
# A sweep is an Optuna multi-objective study: each trial proposes per-block-pair low-bit ratios,
# measures the fake-quantized detector's box mAP (COCOeval) and scores the configuration on an
# accelerator spec with the simulator. This notebook
#
# 1. runs a tiny study on the embedded default detector into a temporary SQLite storage
#    (`search.run_sweep`, what `mixaq sweep` does);
# 2. loads it back **from the storage alone** (`search.get_storage`, `search.build_record`), as
#    `mixaq plot` or a colleague on another machine would;
# 3. plots the front, picks a configuration and inspects its per-layer cost with the simulator.
#
# The study is far too small to mean much (a handful of images and trials; `make demo` runs 30
# trials on 32 images). `MIXAQ_NOTEBOOK_SMALL=1` shrinks it further. Nothing is written into the
# repository: data, storage and plots live in a temporary directory.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import torch

from mixaq.models.detection import DEFAULT_VAL, write_synthetic
from mixaq.search import EvaluatorFactory, SearchSpace, SweepSettings, build_record, get_storage, render_plots, run_sweep
from mixaq.simulator import WindowAssignment, estimate, get_arch

SMALL = os.environ.get("MIXAQ_NOTEBOOK_SMALL") == "1"
EVAL_IMAGES, CALIB_IMAGES, N_TRIALS = (4, 4, 5) if SMALL else (16, 8, 16)
torch.set_num_threads(min(2, os.cpu_count() or 1))
pd.set_option("display.width", 140)

workdir = Path(tempfile.mkdtemp(prefix="mixaq_nb02_"))
print("working in", workdir)

# %% [markdown]
# ## Data and the accuracy side
#
# `EvaluatorFactory(checkpoint=None, data=None)` would use the embedded default detector and its
# 532-image synthetic val split (generated into `$MIXAQ_CACHE` on first use). To stay small and
# self-contained we render a few images of the same distribution (seed 2) into the temp dir. The
# last `calib_images` images calibrate the PTQ observers and are never evaluated.

# %%
val = write_synthetic(workdir / "val", EVAL_IMAGES + CALIB_IMAGES, seed=DEFAULT_VAL["seed"], image_hw=(256, 256),
                      generator=DEFAULT_VAL["generator"], progress=False)
factory = EvaluatorFactory(checkpoint=None, data=str(val), max_images=EVAL_IMAGES, calib_images=CALIB_IMAGES,
                           torch_threads=torch.get_num_threads())
accuracy = factory()  # the evaluator for this process (run_sweep's workers would build their own)
print("arch:", accuracy.arch)
print("input:", accuracy.image_hw, "| block pairs:", accuracy.arch.block_pairs())

# %% [markdown]
# ## The study
#
# The paper's knob: one low-bit ratio per block pair at W4 A8/A4, importance-ordered windows.
# Objectives (both maximized): mAP and the simulated speedup over uniform A8 on `bitfusion`,
# here in cycles. A coarse ratio grid keeps the tiny study meaningful.

# %%
settings = SweepSettings(
    space=SearchSpace(num_pairs=accuracy.arch.num_pairs, ratio_choices=(0.0, 0.25, 0.5, 0.75)),
    spec="bitfusion",
    cost="cycles",
    population_size=4,
    seed=0,
    baseline_points=1,
)
storage_url = f"sqlite:///{workdir / 'study.db'}"
result = run_sweep(settings, factory, storage_url, "notebook", N_TRIALS, accuracy=accuracy, progress=False)
print(f"{result.n_complete} complete (measured or mAP-cache hits), {result.n_pruned} pruned (screened out), "
      f"{result.n_evaluated_here} run here")
result.front[["number", "ap", "speedup", "label"]]

# %% [markdown]
# ## Load it from storage
#
# Everything below needs only the storage URL and the study name: `build_record` turns the study
# into plain tables (trials, feasible front, baselines measured in the same run, the chosen point's
# per-layer breakdown) and `render_plots` draws the same pictures as `mixaq plot`.

# %%
del result  # from here on, only the storage
study = optuna.load_study(study_name="notebook", storage=get_storage(storage_url))
record = build_record(study)
print("cost metric:", record.cost_kind, "| reference (uniform A8) mAP:", round(record.reference_ap, 4),
      "| float mAP:", round(record.float_ap, 4))
record.trials[["number", "state", "outcome", "ap", "speedup", "speedup_bops", "on_front", "label"]]

# %%
record.baselines[["name", "label", "ap", "speedup", "speedup_bops"]]

# %%
from IPython.display import Image, display

plots = render_plots(record, workdir / "plots")
# render_plots switches matplotlib to Agg (it is made for files); draw inline again from here on
# %matplotlib inline
print([Path(p).name for p in plots])
display(Image(filename=str(workdir / "plots" / "pareto.png"), width=640))

# %% [markdown]
# The same front drawn by hand from the record, with the baselines (uniform low, random /
# reversed windows and pruning-only at a front point's ratios):

# %%
done = record.trials[record.trials["state"] == "COMPLETE"]
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.scatter(done["speedup"], done["ap"], color="lightgrey", label="trials")
front = record.front.sort_values("speedup")
ax.step(front["speedup"], front["ap"], where="pre", color="tab:blue", marker="o", label="front")
for _, b in record.baselines.dropna(subset=["speedup"]).iterrows():
    ax.scatter(b["speedup"], b["ap"], marker="x")
    ax.annotate(b["name"], (b["speedup"], b["ap"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
ax.axhline(record.float_ap, color="grey", ls=":", label="float")
ax.set_xlabel(f"speedup over uniform A8 ({record.cost_kind}, bitfusion)")
ax.set_ylabel("box mAP (COCOeval)")
ax.legend(fontsize=8)
ax.set_title(f"study 'notebook': {len(done)} trials on {EVAL_IMAGES} images")

# %% [markdown]
# Reading it: the front holds the non-dominated *trials*; the baselines are measured beside them
# and can dominate front points (on `bitfusion` in cycles, a few low-bit windows in stage 0 cost
# more gather/importance work than they save, so such points can be slower than uniform A8).
# Against its random- and reversed-window baselines a front point shows whether importance order
# matters on this model.

# %%
bl = record.baselines.dropna(subset=["speedup"])
front_vs_baselines = front[["number", "ap", "speedup"]].assign(
    dominated_by=[", ".join(bl.loc[(bl["speedup"] >= f.speedup) & (bl["ap"] >= f.ap), "name"]) or "-"
                  for f in front.itertuples()])
front_vs_baselines

# %% [markdown]
# ## Pick a configuration and inspect it
#
# Say we accept losing at most 2 mAP points against uniform A8 and want the fastest such point
# (if none qualifies, the most accurate front point). Its knobs are in the trials table; rebuild its
# window assignment with the simulator's counting rule, cost it, and check that this reproduces
# the speedup the study stored.

# %%
ok = front[front["ap"] >= record.reference_ap - 0.02]
chosen = ok.iloc[-1] if len(ok) else front.sort_values("ap").iloc[-1]
print("rule:", "fastest within 2 points" if len(ok) else "no front point within 2 points: the most accurate one")
number = int(chosen["number"])
row = record.trials.set_index("number").loc[number]
pairs = accuracy.arch.num_pairs
low_ratios = tuple(float(row[f"low_ratio_p{p}"]) for p in range(pairs))
prune_ratios = tuple(float(row.get(f"prune_ratio_p{p}", 0.0)) for p in range(pairs))
print(f"trial {number}: {row['label']} | mAP {row['ap']:.4f} | speedup {row['speedup']:.3f}x cycles")

arch = get_arch(record.context["arch"])
image_hw = tuple(record.context["image_hw"])
bits = dict(high_act_bits=int(row["high_act_bits"]), low_act_bits=int(row["low_act_bits"]),
            weight_bits=int(row["weight_bits"]))
assignment = WindowAssignment.from_pair_ratios(arch, image_hw, low_ratios, prune_ratios, **bits)
mine = estimate(settings.spec, arch, image_hw, assignment)
ref = estimate(settings.spec, arch, image_hw, WindowAssignment.uniform(arch, bits["high_act_bits"], bits["weight_bits"]))
speedup = mine.speedup_over(ref)
print("recomputed:", {k: round(v, 4) for k, v in speedup.items()})
assert np.isclose(speedup["cycles"], row["speedup"], rtol=1e-9), (speedup, row["speedup"])

# %% [markdown]
# Per-layer cost of the chosen point against the reference: `build_record(study, pick_trial=N)`
# computes the same breakdown `mixaq plot --pick N` draws (the cost metric of the study, per Swin
# block; stage-level ops and the MixA-Q overheads on their own rows).

# %%
picked = build_record(study, pick_trial=number)
bd = picked.breakdown.set_index("group")
ax = bd[["reference", "chosen"]].plot.bar(figsize=(10, 4))
plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
ax.set_ylabel(record.cost_kind)
ax.set_title(f"trial {number} vs uniform A8, per layer")
plt.tight_layout()
# The breakdown sums to the totals the simulator gives for the same assignment.
assert np.isclose(bd["chosen"].sum(), mine.totals.cycles, rtol=1e-9)
assert np.isclose(bd["reference"].sum(), ref.totals.cycles, rtol=1e-9)
bd.assign(saved=bd["reference"] - bd["chosen"]).round(0)

# %% [markdown]
# Every trial also stored whether the windows the model *recorded* while it was measured matched
# the simulator's counting rule for its ratios (`assignment_matches`): the speedup and the mAP
# describe the same configuration.

# %%
assert bool(row["assignment_matches"])
record.trials.loc[record.trials["state"] == "COMPLETE", ["number", "assignment_matches", "eval_seconds", "n_images"]]

# %%
import shutil

shutil.rmtree(workdir)
