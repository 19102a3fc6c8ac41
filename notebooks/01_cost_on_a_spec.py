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
# # 1 · Estimating cost on an accelerator spec
#
# The simulator (`simulator/`, torch-free) costs a window-level mixed-precision Swin backbone on a
# precision-scalable accelerator, per image. This notebook
#
# 1. loads a preset spec and costs one assignment (per-op table, per-layer breakdown plots);
# 2. shows how the low-bit ratio and the bit widths move **BOPs** (what ideal precision scaling
#    promises) and **cycles** (what the array delivers) apart;
# 3. compares the preset specs in `specs/`.
#
# Everything here uses public names of `simulator` only. Set `MIXAQ_NOTEBOOK_SMALL=1` to run on
# smaller grids (the test suite does).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mixaq.simulator import (
    WindowAssignment,
    estimate,
    estimate_batch,
    fractions_from_pair_ratios,
    get_arch,
    list_specs,
    load_spec,
)

SMALL = os.environ.get("MIXAQ_NOTEBOOK_SMALL") == "1"
ARCH = get_arch("swin_t")
IMAGE_HW = (800, 1333)  # COCO-style detection input; costed as 800x1336 (patch multiple)
pd.set_option("display.width", 140)
print(ARCH)
print("block pairs (one low-bit / prune ratio each):", ARCH.block_pairs())
print("windows per block at", IMAGE_HW, ":", ARCH.windows_per_block(IMAGE_HW))

# %% [markdown]
# ## A spec and one assignment
#
# A spec is a YAML file; presets are the files in `specs/` (`list_specs()`). An assignment says,
# per Swin block, which share of the windows runs at the low activation width (and which share is
# pruned). `from_pair_ratios` turns one ratio per block pair into exact per-block fractions with
# the same counting rule the model uses.

# %%
print("presets:", list_specs())
spec = load_spec("bitfusion")
print(spec.description)
print(f"array {spec.rows}x{spec.cols} {spec.dataflow}, {spec.frequency_mhz:g} MHz, "
      f"act bits {spec.supported_act_bits}, weight bits {spec.supported_weight_bits}")

mixed = WindowAssignment.from_pair_ratios(ARCH, IMAGE_HW, low_ratios=0.5, prune_ratios=0.0,
                                          high_act_bits=8, low_act_bits=4, weight_bits=4)
uniform = WindowAssignment.uniform(ARCH, act_bits=8, weight_bits=4)
report = estimate(spec, ARCH, IMAGE_HW, mixed)
reference = estimate(spec, ARCH, IMAGE_HW, uniform)
print(f"W4 A8/A4, half the windows low-bit: {report.totals.latency_ms:.1f} ms, "
      f"{report.totals.bops:.3e} BOPs, {report.totals.cycles:.3e} cycles")
print("speedup over uniform W4A8:", {k: round(v, 3) for k, v in report.speedup_over(reference).items()})
report.per_op.head(12)

# %% [markdown]
# The per-op table has one row per op and branch (`high` / `low`; `all` for ops outside the
# mixed blocks and for the MixA-Q overheads: window importance and gather/scatter). Group it into
# per-layer bars: per Swin block, split by op kind.

# %%
OP_KIND = {
    "qkv": "qkv", "proj": "proj", "fc1": "mlp", "fc2": "mlp", "gelu": "vector",
    "qk": "attention", "av": "attention", "softmax": "vector",
    "norm1": "vector", "norm2": "vector", "patch_norm": "vector", "merge_norm": "vector",
    "patch_embed": "embed/merge", "merge": "embed/merge",
    "importance_tokens": "MixA-Q overhead", "importance_regular": "MixA-Q overhead",
    "importance_shifted": "MixA-Q overhead", "gather_scatter": "MixA-Q overhead",
}


def per_layer(per_op: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows: Swin blocks (stage-level ops are booked to a `stage N` row); columns: op kinds."""
    missing = set(per_op["op"]) - set(OP_KIND)
    assert not missing, f"op kinds to map: {missing}"
    layer = np.where(per_op["block"] >= 0, "block " + per_op["block"].astype(str),
                     "stage " + per_op["stage"].astype(str))
    table = per_op.assign(layer=layer, kind=per_op["op"].map(OP_KIND))
    order = list(dict.fromkeys(layer))  # execution order
    kinds = list(dict.fromkeys(OP_KIND.values()))  # every kind, fixed order: same colours in every plot
    pivot = table.pivot_table(index="layer", columns="kind", values=column, aggfunc="sum", fill_value=0.0)
    return pivot.reindex(index=order, columns=kinds, fill_value=0.0)


fig, axes = plt.subplots(1, 2, figsize=(15, 4.5), sharey=True)
for ax, (name, rep) in zip(axes, [("uniform W4A8", reference), ("W4 A8/A4, low ratio 0.5", report)]):
    per_layer(rep.per_op, "cycles").div(1e6).plot.bar(stacked=True, ax=ax, width=0.8, legend=ax is axes[1])
    ax.set_title(f"{spec.name}: {name} ({rep.totals.cycles / 1e6:.0f} M cycles)")
    ax.set_ylabel("cycles (millions)")
    ax.set_xlabel("")
axes[0].set_ylim(0, 1.05 * per_layer(reference.per_op, "cycles").sum(axis=1).max() / 1e6)
plt.tight_layout()

# %% [markdown]
# The same per block with the two branches apart (`all`: the block's gather/scatter of the mixed
# windows), and the share of each unit: the array's work shrinks with the bits, the vector unit's
# (softmax, LayerNorm, GELU, importance, gather/scatter) does not, and the stage table shows
# where DRAM stalls remain.

# %%
blocks = report.per_op[report.per_op["block"] >= 0]
by_branch = blocks.pivot_table(index="block", columns="branch", values="cycles", aggfunc="sum").div(1e6)
by_unit = report.per_op.groupby("unit")[["bops", "cycles"]].sum()
print("share of cycles per unit:", (by_unit["cycles"] / by_unit["cycles"].sum()).round(3).to_dict())
ax = by_branch.plot.bar(stacked=True, figsize=(9, 3.5), color={"high": "tab:blue", "low": "tab:orange", "all": "tab:grey"})
ax.set_ylabel("cycles (millions)")
ax.set_title("per-block cycles by branch (low ratio 0.5)")
stages = pd.DataFrame(report.stage_summary()).set_index("stage")
stages[["cycles", "stall_cycles", "low_mac_share"]]

# %% [markdown]
# ## How ratios and bit widths move cycles vs BOPs
#
# `estimate_batch` costs many assignments in one vectorized call (one row each). Here every block
# pair gets the same low-bit ratio; each curve is one low activation width (high 8, weights 4).
# A ratio of 0 is the uniform A8 reference, so speedups are relative to the first row.

# %%
ratios = np.round(np.linspace(0.0, 1.0, 6 if SMALL else 11), 3)
low_bits_choices = [2, 4, 6]
pairs = np.repeat(ratios[:, None], ARCH.num_pairs, axis=1)  # (R, pairs)
low_fr, pruned_fr = fractions_from_pair_ratios(ARCH, IMAGE_HW, pairs, 0.0)  # (R, blocks) each

curves = {}
for low_bits in low_bits_choices:
    df = estimate_batch(spec, ARCH, IMAGE_HW, low_fr, pruned_fr, 8, low_bits, 4)
    curves[low_bits] = df.iloc[0] / df  # ratio 0 is the uniform reference

# One row of the batch is exactly what `estimate` gives for that assignment.
check = WindowAssignment(tuple(low_fr[-1]), tuple(pruned_fr[-1]), 8, 2, 4)
assert np.isclose(estimate(spec, ARCH, IMAGE_HW, check).totals.cycles,
                  estimate_batch(spec, ARCH, IMAGE_HW, low_fr[-1:], pruned_fr[-1:], 8, 2, 4)["cycles"].iloc[0])

fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for (low_bits, sp), colour in zip(curves.items(), ["tab:blue", "tab:orange", "tab:green"]):
    axes[0].plot(ratios, sp["bops"], "--", marker="o", color=colour, label=f"BOPs, A8/A{low_bits}")
    axes[0].plot(ratios, sp["cycles"], "-", marker="s", color=colour, label=f"cycles, A8/A{low_bits}")
    axes[1].plot(sp["bops"], sp["cycles"], marker="o", color=colour, label=f"A8/A{low_bits}")
axes[0].set_xlabel("low-bit ratio (every block pair)")
axes[0].set_ylabel("speedup over uniform W4A8")
axes[0].legend(fontsize=8)
lim = max(c["bops"].max() for c in curves.values())
axes[1].plot([1, lim], [1, lim], color="grey", lw=0.8, label="cycles = BOPs")
axes[1].set_xlabel("BOPs speedup")
axes[1].set_ylabel("cycle speedup")
axes[1].legend(fontsize=8)
fig.suptitle(f"{spec.name}: what ideal precision scaling promises (BOPs) vs what the array delivers (cycles)")
plt.tight_layout()
pd.DataFrame({f"A{b}": c[["bops", "cycles"]].iloc[-1] for b, c in curves.items()}).T.rename_axis("all windows low")

# %% [markdown]
# More low-bit windows never cost more BOPs. Cycles need not follow BOPs one to one: the vector
# work and the importance overhead do not scale with the bits (cycles fall *less*), while narrower
# operands also shrink DRAM traffic and stalls (cycles can fall *more*). The gap per point:

# %%
for low_bits, sp in curves.items():
    assert np.all(np.diff(sp["bops"].to_numpy()) >= -1e-9), low_bits  # monotone in the ratio
pd.DataFrame({f"A8/A{b}": (c["cycles"] / c["bops"]).to_numpy() for b, c in curves.items()},
             index=pd.Index(ratios, name="low ratio")).round(3).rename_axis("cycle / BOPs speedup", axis=1)

# %% [markdown]
# Weight bits matter too: the weight layers dominate the MACs, and Bit Fusion fuses its bricks by
# *both* operand widths. A grid over weight bits × low activation bits at ratio 0.5:

# %%
w_choices = [2, 4, 8]
a_choices = [2, 4, 8] if SMALL else [2, 3, 4, 5, 6, 8]
grid = [(w, a) for w in w_choices for a in a_choices]
half = np.repeat(np.full((1, ARCH.num_pairs), 0.5), len(grid), axis=0)
low_h, pruned_h = fractions_from_pair_ratios(ARCH, IMAGE_HW, half, 0.0)
g = estimate_batch(spec, ARCH, IMAGE_HW, low_h, pruned_h, 8, np.array([a for _, a in grid]),
                   np.array([w for w, _ in grid]))
ref_cycles = reference.totals.cycles
table = pd.DataFrame({"weight_bits": [w for w, _ in grid], "low_act_bits": [a for _, a in grid],
                      "cycle_speedup": ref_cycles / g["cycles"].to_numpy(),
                      "bops_speedup": reference.totals.bops / g["bops"].to_numpy()})
table.pivot(index="weight_bits", columns="low_act_bits", values="cycle_speedup").round(3)

# %% [markdown]
# ## Comparing the preset specs
#
# The same workload (W4 A8/A4, ratio 0.5) on every preset. BOPs do not depend on the hardware;
# cycles, energy and latency do. On the fixed INT8 array low bits only save bytes, and the
# importance / gather overhead makes mixing slower than the uniform reference.

# %%
rows = []
for name in list_specs():
    s = load_spec(name)
    mine, ref = estimate(s, ARCH, IMAGE_HW, mixed), estimate(s, ARCH, IMAGE_HW, uniform)
    sp = mine.speedup_over(ref)
    vector = mine.per_op.loc[mine.per_op["unit"] == "vector", "cycles"].sum()
    rows.append({"spec": name, "model": s.precision_model, "array": f"{s.rows}x{s.cols} {s.dataflow}",
                 "latency_ms": mine.totals.latency_ms, "speedup_bops": sp["bops"], "speedup_cycles": sp["cycles"],
                 "speedup_energy": sp["energy"], "stall_share": mine.totals.stall_cycles / mine.totals.cycles,
                 "vector_share": vector / mine.totals.cycles})
specs_table = pd.DataFrame(rows).set_index("spec")
assert np.allclose(specs_table["speedup_bops"], specs_table["speedup_bops"].iloc[0])  # hardware-free
ax = specs_table[["speedup_bops", "speedup_cycles", "speedup_energy"]].plot.bar(figsize=(9, 3.5), rot=0)
ax.axhline(1.0, color="grey", lw=0.8)
ax.set_ylabel("speedup over uniform W4A8")
ax.set_title("W4 A8/A4, half the windows low-bit, Swin-T 800x1333")
ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
specs_table.round(3)

# %% [markdown]
# ## Your own spec
#
# Any YAML file with the fields of `docs/simulator.md` works: `load_spec("path/to/my.yaml")`
# (or `mixaq cost --spec path/to/my.yaml ...`). Write it anywhere outside the repository, for
# example a temporary directory:

# %%
import tempfile
from pathlib import Path

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "bitfusion_2x.yaml"
    path.write_text(Path(spec.source).read_text().replace("name: bitfusion", "name: bitfusion_2x")
                    .replace("dram_bytes_per_cycle: 16", "dram_bytes_per_cycle: 32"))
    faster = load_spec(path)
    print(faster.name, faster.dram_bytes_per_cycle, "bytes/cycle")
    r2 = estimate(faster, ARCH, IMAGE_HW, mixed)
    print(f"twice the DRAM bandwidth: cycles {report.totals.cycles:.4e} -> {r2.totals.cycles:.4e}, "
          f"stalls {report.totals.stall_cycles:.3e} -> {r2.totals.stall_cycles:.3e}, "
          f"DRAM bytes {report.totals.dram_bytes:.3e} -> {r2.totals.dram_bytes:.3e}")
    # The latency mapper may trade stalls for compute (other tilings become worth it), but more
    # bandwidth never makes the fastest schedule slower.
    assert r2.totals.cycles <= report.totals.cycles
