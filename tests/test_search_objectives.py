"""Objectives as data, hardware co-exploration and Pareto analytics on the analytic stand-in objective:
fronts against brute force, the default sweep against the pre-change code, hypervolume against
inclusion-exclusion, hardware space files, compare plots, the nearest infeasible trial."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.hardware._hw_space import load_hw_space
from mixaq.search.space._hypervolume import hypervolume
from mixaq.search.space._objectives import objective_list, oriented
from mixaq.search.records._record import build_record
from mixaq.search.study._storage import get_storage
from mixaq.search.cli import main
from mixaq.simulator import MixaqError, estimate_specs, get_arch

NANO = get_arch("swin_nano")
DATA = Path(__file__).parent / "data"

SMALL_SPACE = {
    "name": "small", "base": "bitfusion",
    "knobs": {"array.rows": [8, 16], "array.cols": [8, 32], "array.dataflow": ["ws", "os"],
              "sram_kib.ifmap": [4, 32],
              "precision": [{"model": "bitfusion", "min_bits": 2, "max_bits": 8},
                            {"model": "bitserial", "min_bits": 1, "max_bits": 8}]},
    "budgets": {"area_mm2": 1.2},
}


def _brute_front(values: np.ndarray) -> np.ndarray:
    """Nested-loop Pareto filter, all objectives maximized: the definition, nothing clever."""
    keep = np.ones(len(values), dtype=bool)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if i != j and np.all(b >= a) and np.any(b > a):
                keep[i] = False
                break
    return keep


def _rows(df: pd.DataFrame, columns: list[str]) -> set[tuple[float, ...]]:
    return {tuple(np.round(r, 12)) for r in df[columns].to_numpy(float)}


def test_default_sweep_matches_the_code_before_objectives(tmp_path):
    """Same trials.csv columns, trial outcomes and front as main's code before this change (golden
    file written by that code on the same seed)."""
    golden = json.loads((DATA / "default_sweep_before_objectives.json").read_text())
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True), spec="bitfusion",
                      population_size=4, seed=3, cost="bops")
    run_sweep(s, SyntheticAccuracy(), f"sqlite:///{tmp_path / 's.db'}", "x", 20, out_dir=tmp_path, progress=False)
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert list(trials.columns) == golden["trials_columns"]
    got = [[int(r.number), r.state, r.outcome if isinstance(r.outcome, str) else None,
            None if pd.isna(r.ap) else float(r.ap), float(r.speedup)] for r in trials.itertuples()]
    assert got == golden["trials"]
    front = pd.read_csv(tmp_path / "pareto.csv")
    assert [[int(r.number), float(r.ap), float(r.speedup)] for r in front.itertuples()] == golden["front"]


def test_three_objective_coexploration_front_equals_brute_force(tmp_path):
    """(mAP, cycles, area) over a hardware space: the study's front equals a brute-force Pareto filter
    of every completed trial on EVERY hardware point of the space (not only the kept ones)."""
    space = load_hw_space(SMALL_SPACE)
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True, search_act_bits=True),
                      spec="bitfusion", population_size=4, seed=2, objectives=("map", "cycles", "area_mm2"),
                      hw_space=space.to_dict())
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(s, SyntheticAccuracy(), url, "co", 10, out_dir=tmp_path, progress=False)
    study = optuna.load_study(study_name="co", storage=get_storage(url))
    rec = build_record(study)
    done = rec.trials[rec.trials["state"] == "COMPLETE"]
    assert len(done) == 10
    objectives = objective_list(s.objectives)
    # Every (trial, point) of the grid, costed independently with estimate_specs.
    idx = [int(i) for i in space.indices(s.seed) if not space.budget_violations(space.spec(int(i)))]
    specs = [space.spec(i) for i in idx]
    rows = []
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        info = t.user_attrs["info"]
        p = info["point"]
        out = estimate_specs(specs, NANO, (64, 64), np.array([info["low_fraction"]]), np.array([info["pruned_fraction"]]),
                             p["high_act_bits"], p["low_act_bits"], p["weight_bits"], unsupported="nan")
        for h, spec in enumerate(specs):
            if np.isfinite(out["cycles"][h, 0]):
                rows.append([info["ap"], out["cycles"][h, 0], spec.area_mm2])
    values = np.array(rows)
    brute = values[_brute_front(oriented(values, objectives))]
    assert _rows(pd.DataFrame(brute, columns=["ap", "cycles", "area_mm2"]), ["ap", "cycles", "area_mm2"]) == \
        _rows(rec.front, ["ap", "cycles", "area_mm2"])
    # Every front point names its hardware, and its YAML reruns to the same cycles.
    yaml_spec = tmp_path / "specs" / f"{rec.front.iloc[0]['spec_name']}.yaml"
    assert yaml_spec.is_file()
    from mixaq.simulator import load_spec

    assert load_spec(yaml_spec).content_hash() == rec.front.iloc[0]["spec_hash"]
    hv = pd.read_csv(tmp_path / "hypervolume.csv")
    assert (np.diff(hv["hypervolume"]) >= 0).all() and hv["hypervolume"].iloc[-1] > 0
    assert (tmp_path / "front_matrix.png").is_file() and (tmp_path / "hw_points.csv").is_file()
    scored = rec.trials["hw_points_scored"].dropna()
    assert (scored == len(specs)).all()


def test_three_objective_fixed_spec_front_equals_brute_force(tmp_path):
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True, search_act_bits=True),
                      spec="bitfusion", population_size=4, seed=5, objectives=("map", "latency_ms", "dram_bytes"),
                      screen=False, baseline_points=0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    r = run_sweep(s, SyntheticAccuracy(), url, "f", 10, progress=False)
    trials = build_record(optuna.load_study(study_name="f", storage=get_storage(url))).trials
    done = trials[trials["state"] == "COMPLETE"].drop_duplicates("config_key")
    objectives = objective_list(s.objectives)
    cols = [o.column for o in objectives]
    values = done[cols].to_numpy(float)
    assert _rows(done[_brute_front(oriented(values, objectives))], cols) == _rows(r.front, cols)


def _inclusion_exclusion(points: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume (all maximized, above `ref`) by inclusion-exclusion over every subset of boxes."""
    boxes = [p for p in points if np.all(p > ref)]
    total = 0.0
    for k in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, k):
            corner = np.min(subset, axis=0)
            total += (-1) ** (k + 1) * float(np.prod(corner - ref))
    return total


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 3).flatmap(lambda m: st.lists(
    st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=m, max_size=m), min_size=1, max_size=7)))
def test_hypervolume_equals_inclusion_exclusion(points):
    pts = np.array(points)
    m = pts.shape[1]
    objectives = objective_list(["map", "speedup_bops", "speedup_cycles"][:m])
    ref = np.full(m, 0.1)
    assert hypervolume(pts, objectives, ref) == pytest.approx(_inclusion_exclusion(pts, ref), abs=1e-12)
    # Minimized objectives: the same volume in the mirrored orientation.
    mixed = objective_list(["map", "cycles", "area_mm2"][:m])
    flipped = pts.copy()
    flipped[:, 1:] = -flipped[:, 1:]
    ref_mixed = ref.copy()
    ref_mixed[1:] = -ref_mixed[1:]
    assert hypervolume(flipped, mixed, ref_mixed) == pytest.approx(_inclusion_exclusion(pts, ref), abs=1e-12)


def test_hypervolume_is_monotone_over_trials_and_stated(tmp_path):
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True), spec="bitfusion",
                      population_size=4, seed=7, max_map_drop=0.05, baseline_points=0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(s, SyntheticAccuracy(), url, "h", 10, progress=False)
    rec = build_record(optuna.load_study(study_name="h", storage=get_storage(url)))
    hv = rec.hypervolume
    assert len(hv) == 10 and list(hv["completed"]) == list(range(1, 11))
    assert (np.diff(hv["hypervolume"].to_numpy()) >= 0).all() and hv["hypervolume"].iloc[-1] > 0
    assert hv["ref_ap"].eq(0.0).all() and hv["ref_speedup_bops"].eq(1.0).all()
    # The last value is the hypervolume of the final front, recomputed from the front table.
    front = rec.front
    objectives = objective_list(["map", "speedup_bops"])
    assert hv["hypervolume"].iloc[-1] == pytest.approx(hypervolume(front[["ap", "speedup_bops"]].to_numpy(),
                                                                   objectives, np.array([0.0, 1.0])))


def test_nearest_infeasible_is_named_when_nothing_is_feasible(tmp_path, capsys):
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True), spec="bitfusion",
                      population_size=4, seed=1, max_map_drop=0.0, min_speedup=1.2, screen=False, baseline_points=0)
    r = run_sweep(s, SyntheticAccuracy(), f"sqlite:///{tmp_path / 's.db'}", "n", 4, out_dir=tmp_path, progress=False)
    assert (tmp_path / "pareto.png").is_file()
    assert r.front.empty and r.nearest_infeasible is not None
    text = r.nearest_infeasible["text"]
    assert f"trial {r.nearest_infeasible['number']}" in text and "--max-map-drop 0 by" in text and "\n" not in text
    from mixaq.search.cli._sweep import print_summary

    print_summary(r, tmp_path)
    assert text in capsys.readouterr().out


def test_compare_overlays_studies_and_refuses_other_objectives(tmp_path, capsys):
    for spec in ("bitfusion", "bitserial"):
        (tmp_path / spec).mkdir()
        s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs), spec=spec, cost="cycles", population_size=4,
                          baseline_points=0)
        run_sweep(s, SyntheticAccuracy(), f"sqlite:///{tmp_path / spec / 'study.db'}", "x", 4, progress=False)
    assert main(["plot", "--compare", str(tmp_path / "bitfusion"), str(tmp_path / "bitserial"),
                 "--out", str(tmp_path / "cmp")]) == 0
    fronts = pd.read_csv(tmp_path / "cmp" / "compare_fronts.csv")
    assert fronts["study"].nunique() == 2 and (tmp_path / "cmp" / "compare.png").is_file()
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs), spec="bitfusion", population_size=4)
    (tmp_path / "bops").mkdir()
    run_sweep(s, SyntheticAccuracy(), f"sqlite:///{tmp_path / 'bops' / 'study.db'}", "x", 2, progress=False)
    capsys.readouterr()
    assert main(["plot", "--compare", str(tmp_path / "bitfusion"), str(tmp_path / "bops"), "--out",
                 str(tmp_path / "c2")]) == 2
    err = capsys.readouterr().err
    assert "same --objectives" in err and err.count("\n") == 1


def test_mask_ap_objective_without_masks_is_a_one_line_error(tmp_path):
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs), spec="bitfusion", population_size=4,
                      objectives=("map_segm", "speedup_bops"))
    with pytest.raises(MixaqError, match=r"map_segm reads column 'ap_segm'.*no masks") as err:
        run_sweep(s, SyntheticAccuracy(), f"sqlite:///{tmp_path / 's.db'}", "m", 2, progress=False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("objectives, message", [("map", "at least two"), ("map,map", "twice"),
                                                 ("map,speed", "unknown speed")])
def test_bad_objectives_are_argument_errors(objectives, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--out", "/nonexistent", "--objectives", objectives])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(size=3), "unknown key"),
    (lambda d: d["knobs"].update({"array.depth": [1]}), "knobs.array.depth: not a spec key"),
    (lambda d: d["knobs"].update({"array.rows": {"min": 8, "max": 4, "step": 2}}), "min <= max"),
    (lambda d: d["knobs"].update({"array.rows": [0, 8]}), "array.rows: must be > 0"),
    (lambda d: d["knobs"].update({"precision": ["bitfusion"]}), "choices of a section are mappings"),
    (lambda d: d.update(budgets={"area_mm2": 0.001}), "no point meets the budgets"),
    (lambda d: d.update(budgets={"watts": 3}), "budgets.watts: unknown"),
    (lambda d: d.update(base="nope"), "base: unknown spec 'nope'"),
])
def test_bad_hardware_space_is_a_one_line_error(mutate, message):
    data = json.loads(json.dumps(SMALL_SPACE))
    mutate(data)
    with pytest.raises(MixaqError, match=message) as err:
        space = load_hw_space(data)
        from mixaq.search.hardware._hardware import HardwareGrid

        HardwareGrid(space, 0, NANO, (64, 64), 8, 4)
    assert "\n" not in str(err.value)


def test_hardware_space_ranges_sample_and_shipped_space():
    space = load_hw_space({"base": "bitfusion", "name": "r", "knobs": {
        "array.rows": {"min": 4, "max": 64, "factor": 2}, "dram_bytes_per_cycle": {"min": 4, "max": 16, "step": 4},
        "frequency_mhz": [250, 500]}, "sample": 10})
    assert dict(space.knobs)["array.rows"] == (4, 8, 16, 32, 64)
    assert dict(space.knobs)["dram_bytes_per_cycle"] == (4, 8, 12, 16)
    a, b = space.indices(3), space.indices(3)
    assert len(a) == 10 and (a == b).all() and len(set(a)) == 10  # deterministic sample without repeats
    shipped = load_hw_space("coexplore")
    assert shipped.size > shipped.sample  # sampled, not enumerated
    spec = shipped.spec(int(shipped.indices(0)[0]))
    assert spec.name.startswith("coexplore-") and spec.area_mm2 > 0


def test_memory_model_options_are_knobs_and_ports_count_in_the_dram_budget():
    space = load_hw_space({"base": "bitfusion", "name": "ports", "knobs": {
        "memory.dram_ports": ["shared", "per_operand"], "mapper.split_stream": [True, False]},
        "budgets": {"dram_gbps": 10}})
    specs = [space.spec(i) for i in range(space.size)]
    assert {(s.dram_ports, s.split_stream) for s in specs} == {(p, b) for p in ("shared", "per_operand")
                                                                for b in (True, False)}
    # bitfusion: 16 bytes/cycle at 500 MHz = 8 GB/s per port; three ports exceed a 10 GB/s budget
    over = [s.dram_ports for s in specs if space.budget_violations(s)]
    assert over == ["per_operand", "per_operand"]
    assert space.budget_violations(specs[-1])["dram_gbps"] == pytest.approx(24.0)
