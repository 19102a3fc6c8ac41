"""Draw a `StudyRecord` (matplotlib, Agg): Pareto front, per-layer breakdown, BOPs vs cycle speedup."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixaq.search.records._record import StudyRecord
from mixaq.models._config import RANDOM, REVERSED

__all__ = ["figure", "render_plots", "render_compare", "plot_names", "PLOT_NAMES"]

PLOT_NAMES: tuple[str, ...] = ("pareto", "breakdown", "speedup_bops_vs_cycles", "hypervolume")

# Baseline family (name before "@") -> (marker, colour, legend label).
_BASELINE_STYLE: dict[str, tuple[str, str, str]] = {
    "uniform_high": ("s", "black", "uniform high (reference)"),
    "uniform_low": ("v", "dimgray", "uniform low"),
    RANDOM: ("x", "tab:orange", "random windows, same ratios"),
    REVERSED: ("1", "tab:purple", "reversed windows, same ratios"),
    "prune_only": ("D", "tab:green", "pruning only, same ratios"),
}


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    import matplotlib

    paths = []
    # SVG text stays text (searchable, editable in a paper's figure), not glyph outlines.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
            paths.append(path)
    return paths


def _objective_of(rec: StudyRecord, column: str):  # noqa: ANN202 (search.space._objectives.Objective | None)
    s = rec.settings
    return next((o for o in s.objective_specs if o.column == column
                 or (column == "speedup" and o.column == f"speedup_{s.cost}")), None)


def _accuracy_label(rec: StudyRecord, label: str) -> str:
    """An accuracy axis label with the image count it was measured on: 'measured box mAP (COCOeval,
    0-1, 32 images)'."""
    n = rec.n_images
    return label.replace("(COCOeval)", f"(COCOeval, 0-1{f', {n} images' if n else ''})")


def _axes_columns(rec: StudyRecord) -> tuple[str, str, str, str]:
    """(x column, y column, x label, y label) of the 2-D Pareto plot: accuracy up, the first other
    objective across (the default: mAP vs the --cost speedup). Labels carry units."""
    s = rec.settings
    objectives = s.objective_specs
    y = next((o for o in objectives if o.source == "accuracy"), objectives[0])
    x_col = s.x_column
    x = _objective_of(rec, x_col) or objectives[-1]
    if x_col == "speedup":
        where = f"space {rec.hw_space.name}: each point's own hardware" if rec.hw_space is not None else s.spec
        x_label = (f"simulated {s.cost} speedup (x) over uniform A{s.space.high_act_bits}"
                   f"/W{s.space.weight_bits} on {where}")
    else:
        x_label = f"{x.label}, {'lower' if x.direction == 'minimize' else 'higher'} is better"
    return x_col, y.column, x_label, _accuracy_label(rec, y.label) if y.source == "accuracy" else y.label


def _short(rec: StudyRecord, column: str) -> str:
    """A value's unit suffix for arrow labels: '2.85x', '1.2e+09 cycles'."""
    return "x" if column == "speedup" or column.startswith("speedup_") else f" {column}"


def _interval(df: pd.DataFrame, y_col: str) -> np.ndarray | None:
    """(2, n) error-bar lengths from the 95 % bootstrap interval columns, None where there are none."""
    if y_col != "ap" or "ap_ci_low" not in df or "ap_ci_high" not in df or df.empty:
        return None
    lo = pd.to_numeric(df["ap_ci_low"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(df["ap_ci_high"], errors="coerce").to_numpy(float)
    y = df[y_col].to_numpy(float)
    if not np.isfinite(lo).any():
        return None
    return np.vstack([np.where(np.isfinite(lo), y - lo, 0.0), np.where(np.isfinite(hi), hi - y, 0.0)]).clip(0)


_FAMILY_MARKERS = {"bitfusion": "o", "bitserial": "s", "fixed": "^"}


def _families(df: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """Rows grouped by precision family (co-exploration), or one group."""
    if "precision_family" not in df or df.empty:
        return [(None, df)]
    return [(str(k), g) for k, g in df.groupby("precision_family", sort=True)]


def _pareto(rec: StudyRecord, plt) -> object:
    from mixaq.search.records._plot_view import Extra, zoom_view

    fig, ax = plt.subplots(figsize=(7.5, 5.4))
    hw = rec.settings.hw_space is not None
    t = rec.points if hw else rec.trials[rec.trials["state"] == "COMPLETE"]
    what = "(trial, hardware) points" if hw else "trials"
    x_col, y_col, x_label, y_label = _axes_columns(rec)
    feas = t[t["feasible"].astype(bool)]
    infeas = t[~t["feasible"].astype(bool)]
    f = rec.front
    two_d = len(rec.settings.objectives) == 2
    values = t[x_col].to_numpy(float)
    values = values[np.isfinite(values) & (values > 0)]
    log_x = x_col != "speedup" and len(values) > 0 and values.max() > 20 * values.min()
    if log_x:
        ax.set_xscale("log")  # raw costs across a hardware space span orders of magnitude
    # -- the view: the front and whatever lies near it (search.records._plot_view) ---------------------
    b = rec.baselines
    extras, styled = [], []
    for _, row in b.iterrows():
        family = row["name"].split("@")[0]
        x, y = row.get(x_col), row[y_col] if y_col in row else row["ap"]
        if family == "float" or family not in _BASELINE_STYLE or x is None or pd.isna(x) or pd.isna(y):
            continue
        extras.append(Extra(row["name"], float(x), float(y)))
        styled.append((family, row))
    float_ap = rec.float_ap if y_col == "ap" else math.nan
    if not math.isnan(float_ap):
        extras.append(Extra("float", math.nan, float_ap))
    if rec.map_floor is not None:
        extras.append(Extra("mAP floor", math.nan, rec.map_floor))
    if rec.settings.min_speedup is not None and x_col == "speedup":
        extras.append(Extra("min speedup", rec.settings.min_speedup, math.nan))
    core = f if len(f) else (feas if len(feas) else t)
    core_x, core_y = core[x_col].to_numpy(float), core[y_col].to_numpy(float)
    err = _interval(core, y_col)
    if err is not None:  # the front's error bars stay inside the view too
        core_x = np.concatenate([core_x, core_x, core_x])
        core_y = np.concatenate([core_y, core_y - err[0], core_y + err[1]])
    view = zoom_view(core_x, core_y, extras, log_x=log_x)
    off = {o.label: o for o in view.outside}

    def outside(df: pd.DataFrame) -> int:
        x, y = df[x_col].to_numpy(float), df[y_col].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        return int((ok & ~((x >= view.xlim[0]) & (x <= view.xlim[1]) & (y >= view.ylim[0]) & (y <= view.ylim[1]))).sum())

    def count(df: pd.DataFrame) -> str:
        k = outside(df)
        return f"{len(df)}" + (f", {k} outside the view" if k else "")

    # -- trials (behind everything) ---------------------------------------------------------------
    for family, g in _families(feas):
        ax.scatter(g[x_col], g[y_col], s=16 if not hw else 6, color="tab:blue", alpha=0.35, zorder=1,
                   marker=_FAMILY_MARKERS.get(family, "o"), lw=0,
                   label=f"feasible {what}" + (f", {family}" if family else "") + f" ({count(g)})")
    if len(infeas):
        ax.scatter(infeas[x_col], infeas[y_col], s=16 if not hw else 6, color="lightgray", marker=".", zorder=1,
                   label=f"infeasible {what} ({count(infeas)})")
    fa = rec.front_unconstrained
    constrained = rec.settings.max_map_drop is not None or rec.settings.min_speedup is not None
    if constrained and len(fa) and two_d:
        ax.plot(fa[x_col], fa[y_col], "--", color="tab:red", alpha=0.45, lw=1.0, zorder=2,
                label=f"front ignoring constraints ({len(fa)})")
    # -- baselines: hollow markers under the front, so no front point is hidden -------------------
    seen: set[str] = set()
    n_off = {fam: sum(r["name"] in off for g, r in styled if g == fam) for fam, _ in styled}
    for family, row in styled:
        marker, colour, label = _BASELINE_STYLE[family]
        label = f"{label}, on the base spec" if hw else label
        if n_off[family]:
            label += f" ({n_off[family]} off the view: arrow{'s' if n_off[family] > 1 else ''})"
        x, y = float(row[x_col]), float(row[y_col] if y_col in row else row["ap"])
        err = _interval(pd.DataFrame([row]), y_col)
        if err is not None and family in ("uniform_high", "uniform_low"):  # the references' intervals
            ax.errorbar([x], [y], yerr=err, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2, alpha=0.7, zorder=3)
        filled = marker in ("x", "1", "+")
        ax.scatter([x], [y], marker=marker, s=60, linewidths=1.2, zorder=3,
                   **({"color": colour} if filled else {"facecolor": "none", "edgecolor": colour}),
                   label=None if family in seen else label)
        seen.add(family)
    # -- the front, on top -------------------------------------------------------------------------
    if len(f) and two_d:
        err = _interval(f, y_col)
        if err is not None:
            n = rec.n_images
            ax.errorbar(f[x_col], f[y_col], yerr=err, fmt="none", ecolor="tab:red", elinewidth=0.9, capsize=2.5,
                        zorder=4, label=f"95 % bootstrap interval{f' over the {n} images' if n else ''}")
        ax.plot(f[x_col], f[y_col], "-", color="tab:red", lw=1.5, zorder=5)
        for family, g in _families(f):
            ax.scatter(g[x_col], g[y_col], s=26, color="tab:red", marker=_FAMILY_MARKERS.get(family, "o"), zorder=6,
                       label="feasible Pareto front" + (f", {family}" if family else "") + f" ({len(g)})")
    elif len(f):
        # 3+ objectives: the front's points coloured by the first objective off these axes.
        third = next(o for o in rec.settings.objective_specs if o.column not in (x_col, y_col)
                     and not (x_col == "speedup" and o.column == f"speedup_{rec.settings.cost}"))
        sc = None
        for family, g in _families(f):
            sc = ax.scatter(g[x_col], g[y_col], c=g[third.column], marker=_FAMILY_MARKERS.get(family, "o"),
                            cmap="viridis_r" if third.direction == "minimize" else "viridis", s=30, edgecolor="tab:red",
                            lw=0.8, zorder=6, vmin=float(f[third.column].min()), vmax=float(f[third.column].max()),
                            label=f"{len(rec.settings.objectives)}-objective front" + (f", {family}" if family else "")
                                  + f" ({len(g)})")
        fig.colorbar(sc, ax=ax, label=f"front: {third.label}")
    # Families with masks: the front's other AP (mask AP under a box objective, box under a mask one).
    other = {"ap": "ap_segm", "ap_segm": "ap"}.get(y_col)
    if len(f) and two_d and other in f and pd.to_numeric(f[other], errors="coerce").notna().any():
        ax.plot(f[x_col], pd.to_numeric(f[other], errors="coerce"), ":s", color="tab:brown", ms=4, lw=1.0, zorder=4,
                label=f"front's {'mask' if other == 'ap_segm' else 'box'} mAP")
    if not math.isnan(float_ap):
        ax.axhline(float_ap, color="gray", ls=":", lw=1, zorder=0,
                   label=f"float mAP {float_ap:.3f}" + (f" ({off['float'].side} the view)" if "float" in off else ""))
    # -- chosen and nearest infeasible: rings around the point, never covering it -----------------
    if rec.chosen is not None:
        c = t[t["number"] == rec.chosen]
        if hw and rec.chosen_hw is not None:
            c = c[c["hw_index"] == rec.chosen_hw]
        ax.scatter(c[x_col], c[y_col], marker="o", s=240, facecolor="none", edgecolor="goldenrod", lw=2.0, zorder=7,
                   label=f"chosen for breakdown.png: trial {rec.chosen}, {rec.chosen_rule}")
    if rec.nearest_infeasible is not None:
        n = t[t["number"] == rec.nearest_infeasible["number"]].head(1 if not hw else None)
        ax.scatter(n[x_col], n[y_col], marker="o", s=160, facecolor="none", edgecolor="tab:red", lw=1.5, zorder=7,
                   label=f"nearest infeasible (trial {rec.nearest_infeasible['number']})")
        ax.text(0.01, 0.01, rec.nearest_infeasible["text"], transform=ax.transAxes, fontsize=6, va="bottom",
                wrap=True)
    # -- constraints: shade what they exclude, within the view --------------------------------------
    x0, x1 = view.xlim
    y0, y1 = view.ylim
    if rec.map_floor is not None:
        if y0 <= rec.map_floor <= y1:
            ax.axhspan(y0, rec.map_floor, color="tab:red", alpha=0.06, lw=0, zorder=0)
            ax.axhline(rec.map_floor, color="tab:red", lw=0.8, ls="--", zorder=0,
                       label=f"mAP floor {rec.map_floor:.3f} (--max-map-drop {rec.settings.max_map_drop:g})")
        else:
            ax.plot([], [], color="tab:red", lw=0.8, ls="--",
                    label=f"mAP floor {rec.map_floor:.3f} ({off['mAP floor'].side} the view)")
    if rec.settings.min_speedup is not None and x_col == "speedup":
        ms = rec.settings.min_speedup
        if x0 <= ms <= x1:
            ax.axvspan(x0, ms, color="tab:red", alpha=0.06, lw=0, zorder=0)
        ax.axvline(ms, color="tab:red", lw=0.8, ls="-.", zorder=0, label=f"min speedup {ms:g}x")
    # -- points outside the view: arrows at the edge, with their value -----------------------------
    by_side: dict[str, int] = {}
    for o in view.outside:
        if o.label in ("float", "mAP floor", "min speedup"):  # lines: named in the legend instead
            continue
        family = o.label.split("@")[0]
        colour = _BASELINE_STYLE.get(family, ("", "black", ""))[1]
        k = by_side.get(o.side, 0)
        by_side[o.side] = k + 1
        dx, dy = {"below": (0, 1), "above": (0, -1), "left": (1, 0), "right": (-1, 0)}[o.side]
        text = f"{o.label}: {o.y:.3f} @ {o.x:.3g}{_short(rec, x_col)}"
        ax.annotate(text, xy=(o.at_x, o.at_y), xytext=(dx * (26 + 60 * k), dy * (22 + 10 * k)),
                    textcoords="offset points", fontsize=6.5, color=colour, zorder=8,
                    ha="center" if dy else ("left" if dx > 0 else "right"), va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.0, "shrinkA": 1, "shrinkB": 0})
    ax.set_xlim(*view.xlim)
    ax.set_ylim(*view.ylim)
    ax.set_xlabel(x_label, fontsize=8)
    ax.set_ylabel(y_label, fontsize=8)
    y_name = _objective_of(rec, y_col).name if _objective_of(rec, y_col) else y_col
    x_obj = _objective_of(rec, x_col)
    x_name = f"{rec.cost_kind} speedup" if x_col == "speedup" else (x_obj.label if x_obj else x_col)
    y_words = "mAP" if y_col == "ap" else ("mask mAP" if y_col == "ap_segm" else y_name)
    ax.set_title(f"{rec.study_name}: {y_words} vs {x_name}" + (f" ({rec.n_images} images)" if rec.n_images else ""),
                 fontsize=9)
    ax.grid(alpha=0.3)
    # Below the axes: a legend inside would sit on points.
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return fig


def _hypervolume(rec: StudyRecord, plt) -> object:
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    hv = rec.hypervolume
    if len(hv):
        done = hv["completed"].to_numpy(int)
        values = hv["hypervolume"].to_numpy(float)
        # One more half step so the last value is a visible segment, not the frame's edge.
        ax.step(np.append(done, done[-1] + 0.5), np.append(values, values[-1]), where="post", color="tab:blue",
                label="hypervolume after each completed trial")
        ax.plot(done, values, ".", color="tab:blue", ms=4)
        ax.set_xlim(0.5, done[-1] + 0.5)
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
        ax.set_ylim(0.0, top * 1.08 if top > 0 else 1.0)  # zero-based: a 1.6 % rise looks like one
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ref = ", ".join(f"{_ref_name(o)}={r:.4g}" for o, r in zip(rec.settings.objective_specs, rec.hv_reference))
    ax.set_xlabel("completed trials (count)")
    ax.set_ylabel(f"hypervolume of the feasible front ({_hv_unit(rec)})", fontsize=8)
    source = f"; {rec.hv_reference_source}" if rec.hv_reference_source else ""
    ax.set_title(f"{rec.study_name}: hypervolume\nreference point {ref}{source}", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _ref_name(o) -> str:  # noqa: ANN001 (Objective)
    return {"ap": "mAP", "ap_segm": "mask mAP"}.get(o.column, o.column)


def _hv_unit(rec: StudyRecord) -> str:
    """The hypervolume's unit: the product of its objectives' units."""
    units = {"ap": "mAP", "ap_segm": "mAP", "bops": "BOPs", "cycles": "cycles", "latency_ms": "ms",
             "energy_pj": "pJ", "dram_bytes": "bytes", "area_mm2": "mm²"}
    parts = [units.get(o.column, "x" if o.column.startswith("speedup_") else o.column)
             for o in rec.settings.objective_specs]
    return " · ".join(parts)


def _front_matrix(rec: StudyRecord, plt) -> object:
    """Scatter matrix of the objectives (3+): every completed point in grey, the front in red."""
    from matplotlib.ticker import MaxNLocator

    objectives = rec.settings.objective_specs
    n = len(objectives)
    fig = plt.figure(figsize=(2.6 * n, 2.6 * n + 0.5))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(n, n, squeeze=False)
    pts, front = rec.points, rec.front
    for i, oy in enumerate(objectives):
        for j, ox in enumerate(objectives):
            ax = axes[i][j]
            if i == j:
                values = pts[ox.column].dropna().to_numpy(float)
                bins = np.histogram_bin_edges(values, bins=20) if len(values) else 20
                ax.hist(values, bins=bins, color="lightgray", label="all points")
                ax.hist(front[ox.column].dropna().to_numpy(float), bins=bins, color="tab:red", alpha=0.7,
                        label="front")
            else:
                ax.scatter(pts[ox.column], pts[oy.column], s=5, color="lightgray", label="all points")
                ax.scatter(front[ox.column], front[oy.column], s=10, color="tab:red", label="front")
            if i == n - 1:
                ax.set_xlabel(f"{_matrix_label(rec, ox)}\n({'lower' if ox.direction == 'minimize' else 'higher'} "
                              "is better)", fontsize=7)
            if j == 0:
                ax.set_ylabel(_matrix_label(rec, oy) + ("\n(here: histogram, count)" if i == j else ""), fontsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.tick_params(labelsize=6)
    handles, labels = axes[0][1].get_legend_handles_labels()
    labels = [f"all {'(trial, hardware) ' if rec.hw_space is not None else ''}points ({len(pts)})",
              f"feasible front ({len(front)})"]
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7, frameon=False)
    fig.suptitle(f"{rec.study_name}: every pair of objectives", fontsize=9)
    return fig


def _matrix_label(rec: StudyRecord, o) -> str:  # noqa: ANN001
    return _accuracy_label(rec, o.label) if o.source == "accuracy" else o.label


_BREAKDOWN_UNITS = {"bops": "BOPs", "cycles": "cycles", "energy_pj": "energy (pJ)"}


def _breakdown(rec: StudyRecord, plt) -> object:
    """Per-layer BOPs, cycles and energy of the chosen point vs the reference, side by side."""
    from mixaq.search.records._record import BREAKDOWN_METRICS

    bd = rec.breakdown
    metrics = [m for m in BREAKDOWN_METRICS if f"reference_{m}" in bd]
    fig = plt.figure(figsize=(3.4 * max(len(metrics), 1) + 1.2, max(3.4, 0.26 * len(bd) + 1.6)))
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, max(len(metrics), 1), sharey=True, squeeze=False)[0]
    if bd.empty or not metrics:
        axes[0].text(0.5, 0.5, "no front point yet", ha="center", va="center", transform=axes[0].transAxes)
        return fig
    y = np.arange(len(bd))
    where = rec.settings.spec if rec.chosen_hw is None or rec.hw_space is None else \
        f"{rec.hw_space.name}-{rec.chosen_hw}"
    for ax, m in zip(axes, metrics):
        ref, mine = bd[f"reference_{m}"].to_numpy(float), bd[f"chosen_{m}"].to_numpy(float)
        ax.barh(y - 0.2, ref, height=0.4, color="gray", label="uniform high (reference)")
        ax.barh(y + 0.2, mine, height=0.4, color="tab:red", label=f"trial {rec.chosen}")
        # Ops the reference does not run (importance scoring, gather/scatter): what MixA-Q adds.
        added = (ref == 0) & (mine > 0)
        total_ref, total = float(ref.sum()), float(mine.sum())
        for k in np.flatnonzero(added):
            ax.annotate(f"added: {100 * mine[k] / total if total else 0:.2g} %", (mine[k], y[k] + 0.2), xytext=(3, 0),
                        textcoords="offset points", fontsize=6, va="center", color="tab:red")
        ratio = total_ref / total if total else math.nan
        ax.set_xlabel(f"{_BREAKDOWN_UNITS[m]} per image", fontsize=8)
        ax.set_title(f"{_BREAKDOWN_UNITS[m]}: total {ratio:.2f}x lower" if ratio >= 1 else
                     f"{_BREAKDOWN_UNITS[m]}: total {1 / ratio:.2f}x higher", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=6)
    axes[0].set_yticks(y, [str(g) for g in bd["group"]], fontsize=7)
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7, frameon=False)
    fig.suptitle(f"per-layer cost on {where}: trial {rec.chosen} ({rec.chosen_rule}) vs uniform "
                 f"A{rec.settings.space.high_act_bits}/W{rec.settings.space.weight_bits}", fontsize=8)
    return fig


def _speedups(rec: StudyRecord, plt) -> object:
    fig, ax = plt.subplots(figsize=(6.0, 5.6))
    hw = rec.settings.hw_space is not None
    t = rec.trials[rec.trials["state"] == "COMPLETE"]
    # Trials whose configuration is on the front (with a hardware space: at its representative point).
    f = rec.front if not hw else t[t["on_front"].astype(bool)]
    if hw and "hw_index" in t and rec.hw_space is not None:
        family = {i: rec.hw_space.spec(int(i)).precision_model for i in t["hw_index"].dropna().unique()}
        t = t.assign(precision_family=t["hw_index"].map(family))
        f = f.assign(precision_family=f["hw_index"].map(family))
    for name, g in _families(t):
        ax.scatter(g["speedup_bops"], g["speedup_cycles"], s=14, color="lightgray", zorder=1,
                   marker=_FAMILY_MARKERS.get(name, "o"),
                   label="all trials" + (f", {name}" if name else "") + f" ({len(g)})")
    for name, g in _families(f):
        ax.scatter(g["speedup_bops"], g["speedup_cycles"], s=30, color="tab:red", zorder=3,
                   marker=_FAMILY_MARKERS.get(name, "o"),
                   label=("trials on the front" if hw else "front") + (f", {name}" if name else "") + f" ({len(g)})")
    if len(f) <= 25:  # more labels than that overlap into a smear
        for _, row in f.iterrows():
            ax.annotate(str(int(row["number"])), (row["speedup_bops"], row["speedup_cycles"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    vals = np.concatenate([t["speedup_bops"].to_numpy(float), t["speedup_cycles"].to_numpy(float)])
    vals = vals[np.isfinite(vals)]
    if vals.size:
        lo, hi = float(vals.min()), float(vals.max())
        ax.plot([lo, hi], [lo, hi], "--", color="gray", lw=1, zorder=0, label="cycles = BOPs")
    ref = f"uniform A{rec.settings.space.high_act_bits}/W{rec.settings.space.weight_bits}"
    ax.set_xlabel(f"BOPs speedup (x) over {ref}: ideal precision scaling, any hardware", fontsize=8)
    if hw:
        ax.set_ylabel(f"cycle speedup (x) over {ref}, each on the trial's own hardware point\n(its knee in "
                      f"space {rec.hw_space.name if rec.hw_space is not None else ''}; not the base spec)", fontsize=8)
        ax.set_title("What BOPs promise vs what each trial's own hardware delivers", fontsize=9)
    else:
        ax.set_ylabel(f"cycle speedup (x) over {ref} on {rec.settings.spec}", fontsize=8)
        ax.set_title(f"What BOPs promise vs what {rec.settings.spec} delivers", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
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


_DRAW = {"pareto": _pareto, "breakdown": _breakdown, "speedup_bops_vs_cycles": _speedups,
         "hypervolume": _hypervolume, "front_matrix": _front_matrix}


def figure(record: StudyRecord, name: str):  # noqa: ANN201 (matplotlib.figure.Figure)
    """One of `plot_names(record)` as a matplotlib Figure (what `render_plots` saves)."""
    return _DRAW[name](record, _Figures)


def render_plots(record: StudyRecord, out_dir: str | Path, progress: bool = False) -> list[Path]:
    """Write pareto, breakdown, speedup_bops_vs_cycles, hypervolume (and front_matrix for 3+
    objectives) as PNG and SVG into `out_dir`."""
    from mixaq.core._progress import phase

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    names = plot_names(record)
    with phase("plots", total=len(names), unit="figure", enabled=progress) as bar:
        for name in names:
            paths += _save(figure(record, name), out, name)
            bar.update(1)
    return paths


_COMPARE_STYLES = (("o", "tab:red"), ("s", "tab:blue"), ("^", "tab:green"), ("D", "tab:purple"), ("v", "tab:orange"),
                   ("P", "tab:brown"), ("X", "tab:pink"), ("*", "tab:gray"))


def render_compare(record, out_dir: str | Path) -> list[Path]:  # noqa: ANN001 (search.records._compare.CompareRecord)
    """compare.png/svg: every study's front and baselines on one pair of axes, one legend; and
    compare_hypervolume.png/svg when the studies share their hypervolume reference point."""
    from mixaq.search.records._plot_view import Extra, zoom_view

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = record.records[0]
    x_col, y_col, x_label, y_label = _axes_columns(first)
    fig, ax = _Figures.subplots(figsize=(7.5, 5.4))
    two_d = len(first.settings.objectives) == 2
    core_x, core_y, extras, colours = [], [], [], {}
    for k, (label, rec) in enumerate(zip(record.labels, record.records)):
        marker, colour = _COMPARE_STYLES[k % len(_COMPARE_STYLES)]
        f = rec.front
        t = rec.trials[rec.trials["state"] == "COMPLETE"]
        ax.scatter(t[x_col], t[y_col], s=8, color=colour, alpha=0.15, zorder=1, lw=0)
        ax.plot(f[x_col], f[y_col], ("-" if two_d else "") + marker, color=colour, ms=5, lw=1.3, zorder=5,
                label=f"{label}: {len(f)} front points" + (f", {rec.n_images} images" if rec.n_images else ""))
        core_x += list(f[x_col].to_numpy(float))
        core_y += list(f[y_col].to_numpy(float))
        # Each study's own baselines, in its colour (hollow, under the fronts).
        for _, row in rec.baselines.iterrows():
            family = row["name"].split("@")[0]
            x, y = row.get(x_col), row.get(y_col)
            if family not in _BASELINE_STYLE or x is None or y is None or pd.isna(x) or pd.isna(y):
                continue
            shape = _BASELINE_STYLE[family][0]
            filled = shape in ("x", "1", "+")
            ax.scatter([x], [y], marker=shape, s=50, zorder=3, linewidths=1.1,
                       **({"color": colour} if filled else {"facecolor": "none", "edgecolor": colour}))
            extras.append(Extra(f"{label}: {row['name']}", float(x), float(y)))
            colours[f"{label}: {row['name']}"] = colour
    view = zoom_view(core_x, core_y, extras)
    for o in view.outside:
        dx, dy = {"below": (0, 1), "above": (0, -1), "left": (1, 0), "right": (-1, 0)}[o.side]
        ax.annotate(f"{o.label}: {o.y:.3f} @ {o.x:.3g}{_short(first, x_col)}", xy=(o.at_x, o.at_y),
                    xytext=(dx * 26, dy * 22), textcoords="offset points", fontsize=6, color=colours[o.label],
                    ha="center" if dy else "left", arrowprops={"arrowstyle": "-|>", "color": colours[o.label]})
    # One legend entry per baseline family, in gray: the colour says whose it is.
    present = {e.label.split(": ", 1)[1].split("@")[0] for e in extras}
    for family in (f for f in _BASELINE_STYLE if f in present):
        shape, _, words = _BASELINE_STYLE[family]
        ax.scatter([], [], marker=shape, s=50, color="gray", **({} if shape in ("x", "1", "+") else {"facecolor": "none"}),
                   label=f"{words} (each study's, its colour)")
    ax.set_xlim(*view.xlim)
    ax.set_ylim(*view.ylim)
    if x_col == "speedup":
        x_label = f"simulated {first.cost_kind} speedup (x) over each study's uniform-high reference"
    ax.set_xlabel(x_label, fontsize=8)
    ax.set_ylabel(y_label if len({r.n_images for r in record.records}) == 1 else
                  y_label.replace(f", {first.n_images} images", ", images: see legend"), fontsize=8)
    title = "fronts compared" + ("" if two_d else f" ({len(first.settings.objectives)}-objective fronts, projected)")
    if record.mixed:
        title += "\nMIXED (--allow-mixed): " + "; ".join(record.mixed)
    ax.set_title(title, fontsize=8, color="tab:red" if record.mixed else "black")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    paths = _save(fig, out, "compare")
    if record.same_reference:
        fig, ax = _Figures.subplots(figsize=(6.0, 4.0))
        from matplotlib.ticker import MaxNLocator

        top = 0.0
        for k, (label, rec) in enumerate(zip(record.labels, record.records)):
            hv = rec.hypervolume
            if len(hv):
                done = hv["completed"].to_numpy(int)
                ax.step(np.append(done, done[-1] + 0.5), np.append(hv["hypervolume"], hv["hypervolume"].iloc[-1]),
                        where="post", color=_COMPARE_STYLES[k % 8][1], label=label)
                top = max(top, float(hv["hypervolume"].max()))
        ax.set_ylim(0.0, top * 1.08 if top > 0 else 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ref = ", ".join(f"{_ref_name(o)}={r:.4g}" for o, r in zip(first.settings.objective_specs, first.hv_reference))
        ax.set_xlabel("completed trials (count)")
        ax.set_ylabel(f"hypervolume of the feasible front ({_hv_unit(first)})", fontsize=8)
        ax.set_title(f"hypervolume (reference point {ref})" + ("\nMIXED: " + "; ".join(record.mixed)
                                                              if record.mixed else ""), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths += _save(fig, out, "compare_hypervolume")
    return paths
