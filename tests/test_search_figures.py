"""Every figure type, checked from the figure itself (axis limits hold the front, labels carry units,
legends name every series) and from the saved SVG (text kept as text). The studies are small sweeps on
the analytic stand-in objective (it measures nothing; the subject is the drawing)."""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import optuna
import pandas as pd
import pytest

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.hardware._hw_space import load_hw_space
from mixaq.search.records._plot_view import Extra, zoom_view
from mixaq.search.records._plots import figure, render_plots
from mixaq.search.records._record import build_record
from mixaq.search.study._storage import get_storage
from mixaq.simulator import get_arch

NANO = get_arch("swin_nano")


def _record(tmp_path, name: str, settings: SweepSettings, n: int = 12):
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(settings, SyntheticAccuracy(full_set_ci=True), url, name, n, progress=False)
    return build_record(optuna.load_study(study_name=name, storage=get_storage(url)))


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True), spec="bitfusion",
                      cost="cycles", population_size=4, seed=3, max_map_drop=0.05, baseline_points=2)
    return _record(tmp_path_factory.mktemp("fixed"), "fixed", s, 14)


@pytest.fixture(scope="module")
def coexplore(tmp_path_factory):
    space = load_hw_space({
        "name": "small", "base": "bitfusion",
        "knobs": {"array.rows": [8, 16], "array.cols": [8, 32],
                  "precision": [{"model": "bitfusion", "min_bits": 2, "max_bits": 8},
                                {"model": "bitserial", "min_bits": 1, "max_bits": 8}]}})
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True, search_act_bits=True),
                      spec="bitfusion", population_size=4, seed=2, objectives=("map", "cycles", "area_mm2"),
                      hw_space=space.to_dict(), baseline_points=1)
    return _record(tmp_path_factory.mktemp("co"), "co", s, 8)


def _legend(ax_or_fig) -> list[str]:
    legends = [ax_or_fig.get_legend()] if hasattr(ax_or_fig, "get_legend") else list(ax_or_fig.legends)
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


def _inside(ax, x, y) -> bool:
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x, y = np.asarray(x, float), np.asarray(y, float)
    return bool(((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).all())


def test_pareto_holds_the_front_names_every_series_and_says_what_chosen_means(fixed, tmp_path):
    fig = figure(fixed, "pareto")
    ax = fig.axes[0]
    f = fixed.front
    assert len(f) and _inside(ax, f["speedup"], f["ap"])
    # Error bars (95 % bootstrap) stay inside the view too.
    assert _inside(ax, f["speedup"], f["ap_ci_low"]) and _inside(ax, f["speedup"], f["ap_ci_high"])
    assert "(x)" in ax.get_xlabel() and "cycles" in ax.get_xlabel() and "bitfusion" in ax.get_xlabel()
    assert "images" in ax.get_ylabel() and "mAP" in ax.get_ylabel()
    legend = " | ".join(_legend(ax))
    for family, words in (("uniform_high", "uniform high"), ("uniform_low", "uniform low"),
                          ("prune_only", "pruning only"), ("random", "random windows"),
                          ("reversed", "reversed windows")):
        if fixed.baselines["name"].str.startswith(family).any():
            assert words in legend, words
    assert f"feasible Pareto front ({len(f)})" in legend and "bootstrap interval" in legend
    assert f"chosen for breakdown.png: trial {fixed.chosen}, fastest feasible front point (--max-map-drop 0.05)" in legend
    assert "mAP floor" in legend and "float mAP" in legend
    # Nothing drawn after the front covers it: other markers are hollow or lie below it.
    front_z = max(c.get_zorder() for c in ax.collections if "Pareto front" in (c.get_label() or ""))
    for c in ax.collections:
        if c.get_zorder() > front_z:
            assert len(c.get_facecolor()) == 0 or np.allclose(np.asarray(c.get_facecolor())[:, 3], 0), c.get_label()
    # The saved SVG keeps its text: the legend is searchable in the file a paper includes.
    render_plots(fixed, tmp_path)
    svg = (tmp_path / "pareto.svg").read_text()
    assert "feasible Pareto front" in svg and "chosen for breakdown.png" in svg


def test_a_far_baseline_becomes_an_arrow_with_its_value(fixed):
    b = fixed.baselines.copy()
    far = b[b["name"].str.startswith("prune_only")].head(1).assign(ap=0.08)
    rec = dataclasses.replace(fixed, baselines=pd.concat([b[~b["name"].isin(far["name"])], far]))
    ax = figure(rec, "pareto").axes[0]
    assert ax.get_ylim()[0] > 0.08 + 0.1  # the view stays on the front
    assert _inside(ax, fixed.front["speedup"], fixed.front["ap"])
    notes = [t.get_text() for t in ax.texts]
    name = far["name"].iloc[0]
    assert any(n.startswith(f"{name}: 0.080 @ ") for n in notes), notes
    assert any("off the view: arrow" in t for t in _legend(ax))


def test_zoom_view_takes_near_points_and_reports_far_ones():
    v = zoom_view([1.1, 1.5], [0.54, 0.52], [Extra("near", 1.0, 0.51), Extra("far", 2.8, 0.08),
                                             Extra("line", float("nan"), 0.547)])
    assert set(v.inside) == {"near", "line"} and [o.label for o in v.outside] == ["far"]
    assert v.contains(1.0, 0.51) and v.contains(1.5, 0.547) and not v.contains(2.8, 0.08)
    o = v.outside[0]
    assert o.side == "below" and o.at_y == v.ylim[0] and o.at_x == v.xlim[1]


def test_breakdown_shows_bops_cycles_and_energy_with_units(fixed):
    fig = figure(fixed, "breakdown")
    axes = [a for a in fig.axes if a.get_xlabel()]
    assert [a.get_xlabel() for a in axes] == ["BOPs per image", "cycles per image", "energy (pJ) per image"]
    bd = fixed.breakdown
    for a, m in zip(axes, ("bops", "cycles", "energy_pj")):
        ratio = bd[f"reference_{m}"].sum() / bd[f"chosen_{m}"].sum()
        assert f"{ratio:.2f}x" in a.get_title() or f"{1 / ratio:.2f}x" in a.get_title()
    # The --cost metric is the plain reference/chosen pair, as before.
    assert np.allclose(bd["reference"], bd["reference_cycles"]) and np.allclose(bd["chosen"], bd["chosen_cycles"])
    # What MixA-Q adds (importance scoring) costs cycles but no BOPs: visible in the cycles panel only.
    added = bd[(bd["reference_cycles"] == 0) & (bd["chosen_cycles"] > 0)]
    assert len(added) and (added["chosen_bops"] == 0).all()
    assert any(t.get_text().startswith("added") for t in axes[1].texts)
    assert set(_legend(fig)) == {"uniform high (reference)", f"trial {fixed.chosen}"}
    assert fixed.chosen_rule in fig._suptitle.get_text()


def test_hypervolume_axis_starts_at_zero_with_whole_trial_ticks(fixed):
    ax = figure(fixed, "hypervolume").axes[0]
    hv = fixed.hypervolume
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= hv["hypervolume"].max()
    assert ax.get_xlim()[1] > hv["completed"].max()  # the last step is not the frame
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "mAP=" in ax.get_title() and "(mAP · x)" in ax.get_ylabel()


def test_speedups_say_which_hardware_they_are_on(fixed, coexplore):
    ax = figure(fixed, "speedup_bops_vs_cycles").axes[0]
    assert "on bitfusion" in ax.get_ylabel() and "(x)" in ax.get_xlabel()
    t = fixed.trials[fixed.trials["state"] == "COMPLETE"]
    assert _inside(ax, t["speedup_bops"], t["speedup_cycles"])
    ax = figure(coexplore, "speedup_bops_vs_cycles").axes[0]
    assert "trial's own hardware point" in ax.get_ylabel() and "not the base spec" in ax.get_ylabel()
    legend = " | ".join(_legend(ax))
    families = set(coexplore.points["precision_family"])
    assert any(f in legend for f in families)


def test_coexploration_pareto_marks_precision_families(coexplore):
    ax = figure(coexplore, "pareto").axes[0]
    legend = " | ".join(_legend(ax))
    for family in coexplore.front["precision_family"].unique():
        assert f"front, {family}" in legend
    assert _inside(ax, coexplore.front[coexplore.settings.x_column], coexplore.front["ap"])
    assert "per image" in ax.get_xlabel() and "images" in ax.get_ylabel()


def test_front_matrix_has_a_legend_units_and_unclipped_ticks(coexplore):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figure(coexplore, "front_matrix")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    assert re.fullmatch(r"all \(trial, hardware\) points \(\d+\) \| feasible front \(\d+\)", " | ".join(_legend(fig)))
    labels = " ".join(a.get_xlabel() for a in fig.axes)
    assert "mm²" in labels and "per image" in labels and "images" in labels
    box = fig.bbox
    renderer = canvas.get_renderer()
    def drawn(axis, lim):  # tick labels matplotlib draws: those within the axis limits
        lo, hi = sorted(lim)
        return [t for v, t in zip(axis.get_ticklocs(), axis.get_ticklabels()) if lo <= v <= hi]

    for a in fig.axes:
        for t in drawn(a.xaxis, a.get_xlim()) + drawn(a.yaxis, a.get_ylim()):
            if t.get_text() and t.get_visible():
                e = t.get_window_extent(renderer)
                assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1, t.get_text()
                # A neighbouring panel (drawn with an opaque face) would cover part of the label.
                for other in fig.axes:
                    if other is not a:
                        assert not e.overlaps(other.get_window_extent(renderer)), (t.get_text(), "hidden")


def test_every_front_point_recosts_with_its_mixaq_cost_command(fixed, coexplore, tmp_path, monkeypatch, capsys):
    """pareto.csv's cost_command (arch and input size from the study) gives the trial's own cycles."""
    import json
    import shlex

    from mixaq.search.records._outputs import write_tables
    from mixaq.search.cli import main

    for rec, where in ((fixed, tmp_path / "fixed"), (coexplore, tmp_path / "co")):
        write_tables(rec, where)
        monkeypatch.chdir(where)
        front = pd.read_csv(where / "pareto.csv")
        trials = pd.read_csv(where / "trials.csv")
        assert (trials["arch"] == "swin_nano").all() and (trials["image_hw"] == "64x64").all()
        for _, row in front.head(3).iterrows():
            capsys.readouterr()
            assert main(shlex.split(row["cost_command"])[1:] + ["--format", "json"]) == 0
            totals = json.loads(capsys.readouterr().out)["totals"]
            assert totals["cycles"] == pytest.approx(row["cycles"], rel=1e-9), row["cost_command"]


def test_progress_bar_reports_the_sweeps_own_objectives(tmp_path):
    from mixaq.search.study._sweep import _progress_text

    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True), spec="bitfusion",
                      population_size=4, objectives=("map", "latency_ms", "area_mm2"), baseline_points=0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(s, SyntheticAccuracy(), url, "p", 4, progress=False)
    text = _progress_text(optuna.load_study(study_name="p", storage=get_storage(url)), s)
    assert re.fullmatch(r"front \d+ \| best mAP 0\.\d{3} \| best latency \S+ ms \| best area \S+ mm²", text), text


def test_compare_refuses_other_image_sets_unless_allowed_and_then_says_so(tmp_path, capsys):
    from mixaq.search.cli import main

    for name, images in (("a16", 16), ("b32", 32)):
        (tmp_path / name).mkdir()
        s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True), spec="bitfusion",
                          population_size=4, baseline_points=1, seed=1)
        run_sweep(s, SyntheticAccuracy(val_images=images), f"sqlite:///{tmp_path / name / 'study.db'}", "x", 6,
                  progress=False)
    refs = [str(tmp_path / "a16"), str(tmp_path / "b32")]
    capsys.readouterr()
    assert main(["plot", "--compare", *refs, "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(16 images)" in err and "(32 images)" in err and "--allow-mixed" in err
    assert not (tmp_path / "cmp" / "compare.png").exists()
    assert main(["plot", "--compare", *refs, "--out", str(tmp_path / "cmp"), "--allow-mixed"]) == 0
    assert "note: mixed studies (--allow-mixed), image set:" in capsys.readouterr().out
    svg = (tmp_path / "cmp" / "compare.svg").read_text()
    assert "MIXED (--allow-mixed): image set:" in svg
    # Each study's baselines are named in the legend; each study's image count too.
    assert "uniform high (reference) (each study's, its colour)" in svg and "uniform low" in svg
    assert "16 images" in svg and "32 images" in svg


def test_hv_ref_is_settable_from_the_command_line_and_checked(fixed, tmp_path, capsys):
    from mixaq.search.records._hv_reference import parse_hv_ref
    from mixaq.search.cli import main

    assert parse_hv_ref("map=0.3,speedup_cycles=uniform_low") == {"map": 0.3, "speedup_cycles": "uniform_low"}
    url = f"sqlite:///{tmp_path / 's.db'}"
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs), spec="bitfusion", population_size=4,
                      baseline_points=0)
    run_sweep(s, SyntheticAccuracy(), url, "h", 4, progress=False)
    capsys.readouterr()
    assert main(["plot", "--storage", url, "--study", "h", "--out", str(tmp_path / "p"), "--hv-ref", "map=0.3"]) == 0
    hv = pd.read_csv(tmp_path / "p" / "hypervolume.csv")
    assert hv["ref_ap"].eq(0.3).all() and hv["ref_speedup_bops"].eq(1.0).all()
    assert "map = 0.3 (--hv-ref)" in (tmp_path / "p" / "hypervolume.svg").read_text()
    for bad, needle in (("map", "OBJECTIVE=VALUE"), ("map=low", "a number or uniform_low"),
                        ("latency_ms=1", "does not optimize")):
        capsys.readouterr()
        assert main(["plot", "--storage", url, "--study", "h", "--out", str(tmp_path / "q"), "--hv-ref", bad]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err


def test_hv_reference_default_without_a_floor_is_uniform_low():
    from mixaq.search.records._hv_reference import resolve_hv_reference
    from mixaq.search.space._objectives import objective_list

    objectives = objective_list(["map", "speedup_bops"])
    b = pd.DataFrame({"name": ["uniform_high", "uniform_low"], "ap": [0.547, 0.516]})
    ref, words = resolve_hv_reference(objectives, np.array([0.0, 1.0]), b)
    assert ref.tolist() == [0.516, 1.0] and words == "map = uniform low (0.516)"
    ref, words = resolve_hv_reference(objectives, np.array([0.0, 1.0]), b, max_map_drop=0.03)
    assert ref == pytest.approx([0.517, 1.0]) and words.startswith("map = floor (0.517")
    ref, _ = resolve_hv_reference(objectives, np.array([0.0, 1.0]), b.iloc[:0])
    assert ref.tolist() == [0.0, 1.0]
