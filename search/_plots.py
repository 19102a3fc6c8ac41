"""Draw a `StudyRecord` (matplotlib, Agg): Pareto front, per-layer breakdown, BOPs vs cycle speedup."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixaq.search._record import StudyRecord

__all__ = ["render_plots", "PLOT_NAMES"]

PLOT_NAMES: tuple[str, ...] = ("pareto", "breakdown", "speedup_bops_vs_cycles")

# Baseline family (name before "@") -> (marker, colour, legend label).
_BASELINE_STYLE: dict[str, tuple[str, str, str]] = {
    "uniform_high": ("s", "black", "uniform high (reference)"),
    "uniform_low": ("v", "dimgray", "uniform low"),
    "random": ("x", "tab:orange", "random windows, same ratios"),
    "reversed": ("1", "tab:purple", "reversed windows, same ratios"),
    "prune_only": ("D", "tab:green", "pruning only, same ratios"),
}


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(path)
    return paths


def _pareto(rec: StudyRecord, plt) -> object:
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    t = rec.trials[rec.trials["state"] == "COMPLETE"]
    kind = rec.cost_kind
    feas = t[t["feasible"].astype(bool)]
    infeas = t[~t["feasible"].astype(bool)]
    ax.scatter(feas["speedup"], feas["ap"], s=18, color="tab:blue", alpha=0.45, label=f"feasible trials ({len(feas)})")
    if len(infeas):
        ax.scatter(infeas["speedup"], infeas["ap"], s=18, color="lightgray", marker="x", label=f"infeasible trials ({len(infeas)})")
    fa = rec.front_unconstrained
    constrained = rec.settings.max_map_drop is not None or rec.settings.min_speedup is not None
    if constrained and len(fa):
        ax.plot(fa["speedup"], fa["ap"], "--", color="tab:red", alpha=0.45, lw=1.2,
                label=f"front ignoring constraints ({len(fa)})")
    f = rec.front
    if len(f):
        ax.plot(f["speedup"], f["ap"], "-o", color="tab:red", ms=5, lw=1.5, label=f"feasible Pareto front ({len(f)})")
        # Families with masks: the front's other AP (mask under a box objective, box under a mask one).
        other = "ap_segm" if rec.settings.metric == "ap" else "ap_bbox"
        if other in f and pd.to_numeric(f[other], errors="coerce").notna().any():
            ax.plot(f["speedup"], pd.to_numeric(f[other], errors="coerce"), ":s", color="tab:brown", ms=4, lw=1.0,
                    label=f"front's {'mask' if other == 'ap_segm' else 'box'} mAP")
    b = rec.baselines
    seen: set[str] = set()
    for _, row in b.iterrows():
        family = row["name"].split("@")[0]
        if family == "float" or family not in _BASELINE_STYLE or row["speedup"] is None or math.isnan(row["speedup"]):
            continue
        marker, colour, label = _BASELINE_STYLE[family]
        ax.scatter([row["speedup"]], [row["ap"]], marker=marker, s=55, color=colour,
                   label=None if family in seen else label, zorder=4)
        seen.add(family)
    if not math.isnan(rec.float_ap):
        ax.axhline(rec.float_ap, color="gray", ls=":", lw=1, label=f"float mAP {rec.float_ap:.3f}")
    if rec.chosen is not None:
        c = t[t["number"] == rec.chosen]
        ax.scatter(c["speedup"], c["ap"], marker="*", s=220, color="gold", edgecolor="black", zorder=5,
                   label=f"chosen (trial {rec.chosen})")
    # Constraint region: shade what the constraints exclude.
    ax.autoscale()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if rec.map_floor is not None:
        ax.axhspan(min(y0, rec.map_floor), rec.map_floor, color="tab:red", alpha=0.07, lw=0)
        ax.axhline(rec.map_floor, color="tab:red", lw=0.8, ls="--", label=f"mAP floor {rec.map_floor:.3f}")
    if rec.settings.min_speedup is not None:
        ax.axvspan(min(x0, rec.settings.min_speedup), rec.settings.min_speedup, color="tab:red", alpha=0.07, lw=0)
        ax.axvline(rec.settings.min_speedup, color="tab:red", lw=0.8, ls="-.",
                   label=f"min speedup {rec.settings.min_speedup:g}x")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(f"simulated {kind} speedup over uniform A{rec.settings.space.high_act_bits}"
                  f"/W{rec.settings.space.weight_bits} on {rec.settings.spec}")
    ax.set_ylabel(f"measured {'mask' if rec.settings.metric == 'ap_segm' else 'box'} mAP (COCOeval)")
    ax.set_title(f"{rec.study_name}: mAP vs {kind} speedup")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def _breakdown(rec: StudyRecord, plt) -> object:
    bd = rec.breakdown
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.28 * len(bd) + 1.2)))
    if bd.empty:
        ax.text(0.5, 0.5, "no front point yet", ha="center", va="center", transform=ax.transAxes)
        return fig
    y = np.arange(len(bd))
    ax.barh(y - 0.2, bd["reference"], height=0.4, color="gray", label="uniform high (reference)")
    ax.barh(y + 0.2, bd["chosen"], height=0.4, color="tab:red", label=f"trial {rec.chosen}")
    ax.set_yticks(y, [str(g) for g in bd["group"]], fontsize=7)
    ax.invert_yaxis()
    total_ref, total = float(bd["reference"].sum()), float(bd["chosen"].sum())
    ratio = total_ref / total if total else math.nan
    ax.set_xlabel(f"{rec.cost_kind} per image ({rec.settings.spec})")
    ax.set_title(f"per-layer {rec.cost_kind}: trial {rec.chosen} vs reference (total {ratio:.2f}x)")
    ax.legend(fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _speedups(rec: StudyRecord, plt) -> object:
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    t = rec.trials[rec.trials["state"] == "COMPLETE"]
    f = rec.front
    ax.scatter(t["speedup_bops"], t["speedup_cycles"], s=14, color="lightgray", label="all trials")
    ax.scatter(f["speedup_bops"], f["speedup_cycles"], s=30, color="tab:red", label="front")
    for _, row in f.iterrows():
        ax.annotate(str(int(row["number"])), (row["speedup_bops"], row["speedup_cycles"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    vals = np.concatenate([t["speedup_bops"].to_numpy(float), t["speedup_cycles"].to_numpy(float)])
    vals = vals[np.isfinite(vals)]
    if vals.size:
        lo, hi = float(vals.min()), float(vals.max())
        ax.plot([lo, hi], [lo, hi], "--", color="gray", lw=1, label="cycles = BOPs")
    ax.set_xlabel("BOPs speedup (ideal precision scaling)")
    ax.set_ylabel(f"cycle speedup on {rec.settings.spec}")
    ax.set_title("What BOPs promise vs what the array delivers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


class _Figures:
    """`plt.subplots` look-alike building bare `Figure`s: saving needs no pyplot, so rendering
    never switches the caller's backend (a notebook keeps its inline figures)."""

    @staticmethod
    def subplots(figsize: tuple[float, float]):  # noqa: ANN205 (matplotlib types, imported late)
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots()


def render_plots(record: StudyRecord, out_dir: str | Path) -> list[Path]:
    """Write pareto, breakdown and speedup_bops_vs_cycles as PNG and SVG into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, draw in (("pareto", _pareto), ("breakdown", _breakdown), ("speedup_bops_vs_cycles", _speedups)):
        paths += _save(draw(record, _Figures), out, name)
    return paths
