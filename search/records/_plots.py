"""Draw a `StudyRecord` (matplotlib, Agg): Pareto front, per-layer breakdown, BOPs vs cycle speedup."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixaq.search.records._record import StudyRecord

__all__ = ["render_plots", "plot_names", "PLOT_NAMES"]

PLOT_NAMES: tuple[str, ...] = ("pareto", "breakdown", "speedup_bops_vs_cycles", "hypervolume")

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


def _axes_columns(rec: StudyRecord) -> tuple[str, str, str, str]:
    """(x column, y column, x label, y label) of the 2-D Pareto plot: accuracy up, the first other
    objective across (the default: mAP vs the --cost speedup)."""
    s = rec.settings
    objectives = s.objective_specs
    y = next((o for o in objectives if o.source == "accuracy"), objectives[0])
    x_col = s.x_column
    x = next((o for o in objectives if o.column == x_col or (x_col == "speedup" and o.column == f"speedup_{s.cost}")),
             objectives[-1])
    if x_col == "speedup":
        x_label = (f"simulated {s.cost} speedup over uniform A{s.space.high_act_bits}"
                   f"/W{s.space.weight_bits} on {s.spec}")
    else:
        x_label = f"{x.label} ({'lower' if x.direction == 'minimize' else 'higher'} is better)"
    return x_col, y.column, x_label, y.label


def _pareto(rec: StudyRecord, plt) -> object:
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    hw = rec.settings.hw_space is not None
    t = rec.points if hw else rec.trials[rec.trials["state"] == "COMPLETE"]
    what = "(trial, hardware) points" if hw else "trials"
    x_col, y_col, x_label, y_label = _axes_columns(rec)
    feas = t[t["feasible"].astype(bool)]
    infeas = t[~t["feasible"].astype(bool)]
    ax.scatter(feas[x_col], feas[y_col], s=18 if not hw else 6, color="tab:blue", alpha=0.45,
               label=f"feasible {what} ({len(feas)})")
    if len(infeas):
        ax.scatter(infeas[x_col], infeas[y_col], s=18 if not hw else 6, color="lightgray", marker="x",
                   label=f"infeasible {what} ({len(infeas)})")
    two_d = len(rec.settings.objectives) == 2
    line = "-o" if two_d else "o"
    fa = rec.front_unconstrained
    constrained = rec.settings.max_map_drop is not None or rec.settings.min_speedup is not None
    if constrained and len(fa) and two_d:
        ax.plot(fa[x_col], fa[y_col], "--", color="tab:red", alpha=0.45, lw=1.2,
                label=f"front ignoring constraints ({len(fa)})")
    f = rec.front
    if len(f) and two_d:
        ax.plot(f[x_col], f[y_col], line, color="tab:red", ms=5, lw=1.5, label=f"feasible Pareto front ({len(f)})")
    elif len(f):
        # 3+ objectives: the front's points coloured by the first objective off these axes.
        third = next(o for o in rec.settings.objective_specs if o.column not in (x_col, y_col)
                     and not (x_col == "speedup" and o.column == f"speedup_{rec.settings.cost}"))
        sc = ax.scatter(f[x_col], f[y_col], c=f[third.column], cmap="viridis_r" if third.direction == "minimize"
                        else "viridis", s=30, edgecolor="tab:red", lw=0.8, zorder=3,
                        label=f"{len(rec.settings.objectives)}-objective front ({len(f)})")
        fig.colorbar(sc, ax=ax, label=third.label)
    # Families with masks: the front's other AP (mask AP under a box objective, box under a mask one).
    other = {"ap": "ap_segm", "ap_segm": "ap"}.get(y_col)
    if len(f) and two_d and other in f and pd.to_numeric(f[other], errors="coerce").notna().any():
        ax.plot(f[x_col], pd.to_numeric(f[other], errors="coerce"), ":s", color="tab:brown", ms=4, lw=1.0,
                label=f"front's {'mask' if other == 'ap_segm' else 'box'} mAP")
    b = rec.baselines
    seen: set[str] = set()
    for _, row in b.iterrows():
        family = row["name"].split("@")[0]
        value = row.get(x_col)
        if family == "float" or family not in _BASELINE_STYLE or value is None or math.isnan(value):
            continue
        marker, colour, label = _BASELINE_STYLE[family]
        label = f"{label}, on the base spec" if hw else label
        ax.scatter([value], [row[y_col] if y_col in row else row["ap"]], marker=marker, s=55, color=colour,
                   label=None if family in seen else label, zorder=4)
        seen.add(family)
    if not math.isnan(rec.float_ap) and y_col == "ap":
        ax.axhline(rec.float_ap, color="gray", ls=":", lw=1, label=f"float mAP {rec.float_ap:.3f}")
    if rec.chosen is not None:
        c = t[t["number"] == rec.chosen]
        if hw and rec.chosen_hw is not None:
            c = c[c["hw_index"] == rec.chosen_hw]
        ax.scatter(c[x_col], c[y_col], marker="*", s=220, color="gold", edgecolor="black", zorder=5,
                   label=f"chosen (trial {rec.chosen})")
    if rec.nearest_infeasible is not None:
        n = t[t["number"] == rec.nearest_infeasible["number"]].head(1 if not hw else None)
        ax.scatter(n[x_col], n[y_col], marker="o", s=160, facecolor="none", edgecolor="tab:red", lw=1.5, zorder=5,
                   label=f"nearest infeasible (trial {rec.nearest_infeasible['number']})")
        ax.text(0.01, 0.01, rec.nearest_infeasible["text"], transform=ax.transAxes, fontsize=6, va="bottom",
                wrap=True)
    values = t[x_col].to_numpy(float)
    values = values[np.isfinite(values) & (values > 0)]
    if x_col != "speedup" and len(values) and values.max() > 20 * values.min():
        ax.set_xscale("log")  # raw costs across a hardware space span orders of magnitude
    # Constraint region: shade what the constraints exclude.
    ax.autoscale()
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if rec.map_floor is not None:
        ax.axhspan(min(y0, rec.map_floor), rec.map_floor, color="tab:red", alpha=0.07, lw=0)
        ax.axhline(rec.map_floor, color="tab:red", lw=0.8, ls="--", label=f"mAP floor {rec.map_floor:.3f}")
    if rec.settings.min_speedup is not None and x_col == "speedup":
        ax.axvspan(min(x0, rec.settings.min_speedup), rec.settings.min_speedup, color="tab:red", alpha=0.07, lw=0)
        ax.axvline(rec.settings.min_speedup, color="tab:red", lw=0.8, ls="-.",
                   label=f"min speedup {rec.settings.min_speedup:g}x")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    kind = rec.cost_kind if x_col == "speedup" else x_col
    ax.set_title(f"{rec.study_name}: mAP vs {kind} speedup" if x_col == "speedup"
                 else f"{rec.study_name}: {y_col} vs {kind}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def _hypervolume(rec: StudyRecord, plt) -> object:
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    hv = rec.hypervolume
    if len(hv):
        ax.step(hv["completed"], hv["hypervolume"], where="post", color="tab:blue")
        ax.plot(hv["completed"], hv["hypervolume"], ".", color="tab:blue", ms=4)
    ref = ", ".join(f"{o.column}={r:.4g}" for o, r in zip(rec.settings.objective_specs, rec.hv_reference))
    ax.set_xlabel("completed trials")
    ax.set_ylabel("hypervolume of the feasible front")
    ax.set_title(f"{rec.study_name}: hypervolume (reference {ref})", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _front_matrix(rec: StudyRecord, plt) -> object:
    """Scatter matrix of the objectives (3+): every completed point in grey, the front in red."""
    objectives = rec.settings.objective_specs
    n = len(objectives)
    fig = plt.figure(figsize=(2.4 * n, 2.4 * n))
    axes = fig.subplots(n, n, squeeze=False)
    pts, front = rec.points, rec.front
    for i, oy in enumerate(objectives):
        for j, ox in enumerate(objectives):
            ax = axes[i][j]
            if i == j:
                values = pts[ox.column].dropna().to_numpy(float)
                bins = np.histogram_bin_edges(values, bins=20) if len(values) else 20
                ax.hist(values, bins=bins, color="lightgray")
                ax.hist(front[ox.column].dropna().to_numpy(float), bins=bins, color="tab:red", alpha=0.7)
            else:
                ax.scatter(pts[ox.column], pts[oy.column], s=5, color="lightgray")
                ax.scatter(front[ox.column], front[oy.column], s=10, color="tab:red")
            if i == n - 1:
                ax.set_xlabel(f"{ox.column} ({'min' if ox.direction == 'minimize' else 'max'})", fontsize=7)
            if j == 0:
                ax.set_ylabel(oy.column, fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle(f"{rec.study_name}: {len(front)} front points of {len(pts)} (red)", fontsize=9)
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
    # Trials whose configuration is on the front (with a hardware space: at its representative point).
    f = rec.front if rec.settings.hw_space is None else t[t["on_front"].astype(bool)]
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

    @staticmethod
    def figure(figsize: tuple[float, float]):  # noqa: ANN205
        from matplotlib.figure import Figure

        return Figure(figsize=figsize)


def plot_names(record: StudyRecord) -> tuple[str, ...]:
    """The plots `render_plots` draws for this study (the front matrix only for 3+ objectives)."""
    return PLOT_NAMES + (("front_matrix",) if len(record.settings.objectives) > 2 else ())


def render_plots(record: StudyRecord, out_dir: str | Path) -> list[Path]:
    """Write pareto, breakdown, speedup_bops_vs_cycles, hypervolume (and front_matrix for 3+
    objectives) as PNG and SVG into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    draw = {"pareto": _pareto, "breakdown": _breakdown, "speedup_bops_vs_cycles": _speedups,
            "hypervolume": _hypervolume, "front_matrix": _front_matrix}
    paths: list[Path] = []
    for name in plot_names(record):
        paths += _save(draw[name](record, _Figures), out, name)
    return paths


_COMPARE_STYLES = (("o", "tab:red"), ("s", "tab:blue"), ("^", "tab:green"), ("D", "tab:purple"), ("v", "tab:orange"),
                   ("P", "tab:brown"), ("X", "tab:pink"), ("*", "tab:gray"))


def render_compare(record, out_dir: str | Path) -> list[Path]:  # noqa: ANN001 (search.records._compare.CompareRecord)
    """compare.png/svg: every study's front on one pair of axes, one legend; and
    compare_hypervolume.png/svg when the studies share their hypervolume reference point."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = record.records[0]
    x_col, y_col, x_label, y_label = _axes_columns(first)
    fig, ax = _Figures.subplots(figsize=(7.5, 5.0))
    two_d = len(first.settings.objectives) == 2
    for k, (label, rec) in enumerate(zip(record.labels, record.records)):
        marker, colour = _COMPARE_STYLES[k % len(_COMPARE_STYLES)]
        f = rec.front
        t = rec.trials[rec.trials["state"] == "COMPLETE"]
        ax.scatter(t[x_col], t[y_col], s=8, color=colour, alpha=0.15)
        ax.plot(f[x_col], f[y_col], ("-" if two_d else "") + marker, color=colour, ms=5, lw=1.3,
                label=f"{label}: {len(f)} front points")
    if x_col == "speedup":
        x_label = f"simulated {first.cost_kind} speedup over each study's uniform-high reference"
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title("fronts compared" + ("" if two_d else f" ({len(first.settings.objectives)}-objective fronts, "
                                                     f"projected)"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    paths = _save(fig, out, "compare")
    if record.same_reference:
        fig, ax = _Figures.subplots(figsize=(6.0, 4.0))
        for k, (label, rec) in enumerate(zip(record.labels, record.records)):
            hv = rec.hypervolume
            ax.step(hv["completed"], hv["hypervolume"], where="post", color=_COMPARE_STYLES[k % 8][1], label=label)
        ref = ", ".join(f"{o.column}={r:.4g}" for o, r in zip(first.settings.objective_specs, first.hv_reference))
        ax.set_xlabel("completed trials")
        ax.set_ylabel("hypervolume of the feasible front")
        ax.set_title(f"hypervolume (reference {ref})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths += _save(fig, out, "compare_hypervolume")
    return paths
