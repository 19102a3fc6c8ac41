"""Sweep machinery on the analytic stand-in objective: trial accounting, the mAP cache, the
simulator screen, constraints, settings checks, heartbeat-based recovery."""
from __future__ import annotations

import math
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mixaq.search import (DesignPoint, SearchSpace, StorageOptions, SweepSettings, SyntheticAccuracy, config_key,
                    get_storage, pareto_mask, run_sweep)
from mixaq.search.study._study import completed_frame, trial_info
from mixaq.simulator import MixaqError, WindowAssignment, get_arch

NANO = get_arch("swin_nano")


class CountingFactory:
    """Picklable factory whose accuracy functions count their calls (per process)."""

    calls: list[DesignPoint] = []

    def __init__(self, model: SyntheticAccuracy) -> None:
        self.model = model

    def __call__(self):
        inner = self.model()
        outer = self

        class Counting:
            arch, image_hw = inner.arch, inner.image_hw

            def fingerprint(self):
                return inner.fingerprint()

            def __call__(self, point):
                outer.calls.append(point)
                return inner(point)

        return Counting()


def _settings(**kw) -> SweepSettings:
    space = kw.pop("space", SearchSpace(num_pairs=NANO.num_pairs, search_prune=True))
    return SweepSettings(space=space, spec="bitfusion", cost="bops", population_size=4, **kw)


def _study(url: str, name: str):
    return optuna.load_study(study_name=name, storage=get_storage(url))


def test_n_trials_counts_completed_and_resume_runs_only_missing(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    factory = CountingFactory(SyntheticAccuracy())
    CountingFactory.calls = []
    r = run_sweep(_settings(), factory, url, "a", 6, progress=False)
    assert r.n_complete == 6
    first_calls = len(CountingFactory.calls)
    # 3 fixed baselines + at most one evaluation per completed trial (+ front baselines).
    assert first_calls <= 3 + 6 + 2 * 3
    r = run_sweep(_settings(), factory, url, "a", 6, progress=False)
    assert r.n_complete == 6 and r.n_evaluated_here == 0
    # Nothing new to measure: baselines and trials all come from the study's cache.
    assert len(CountingFactory.calls) == first_calls
    r = run_sweep(_settings(), factory, url, "a", 9, progress=False)
    assert r.n_complete == 9 and r.n_evaluated_here == 3
    study = _study(url, "a")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 9


def test_map_cache_is_keyed_by_what_the_model_runs(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    factory = CountingFactory(SyntheticAccuracy())
    CountingFactory.calls = []
    space = SearchSpace(num_pairs=NANO.num_pairs)  # low ratios only
    run_sweep(_settings(space=space, screen=False, baseline_points=0), factory, url, "c", 0, progress=False)
    study = _study(url, "c")
    # Stage 1 of swin_nano at 64x64 has 4 windows: ratios 0.5 and 0.7 both floor to 2 low windows,
    # so these two points are one configuration; the third differs.
    for low in ((0.5, 0.5), (0.5, 0.7), (0.5, 0.8)):
        study.enqueue_trial({"low_ratio_p0": low[0], "low_ratio_p1": low[1]})
    run_sweep(_settings(space=space, screen=False, baseline_points=0), factory, url, "c", 3, progress=False)
    outcomes = [trial_info(t)["outcome"] for t in _study(url, "c").get_trials(states=(TrialState.COMPLETE,))]
    assert outcomes == ["evaluated", "cached", "evaluated"]
    assert len(CountingFactory.calls) == 3 + 2  # baselines + two distinct configurations
    hw = (64, 64)
    a = WindowAssignment.from_pair_ratios(NANO, hw, (0.5, 0.5))
    b = WindowAssignment.from_pair_ratios(NANO, hw, (0.5, 0.7))
    pa = DesignPoint(8, 4, 4, (0.5, 0.5), (0.0, 0.0))
    pb = DesignPoint(8, 4, 4, (0.5, 0.7), (0.0, 0.0))
    assert config_key(pa, a.low_fraction, a.pruned_fraction) == config_key(pb, b.low_fraction, b.pruned_fraction)


def test_screen_never_rejects_a_point_that_would_join_the_front(tmp_path):
    """The stand-in objective is monotone (the screen's assumption), so every screened-out proposal,
    measured afterwards, must be dominated by the feasible completed trials."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    model = SyntheticAccuracy()
    r = run_sweep(_settings(screen_tolerance=0.0), model, url, "sc", 25, progress=False)
    study = _study(url, "sc")
    screened = [t for t in study.get_trials(states=(TrialState.PRUNED,))
                if trial_info(t).get("outcome") == "rejected_dominated"]
    assert screened, "25 trials of a 4-knob space should screen some proposals"
    done = completed_frame(study)
    feasible = done[done["feasible"]]
    fn = model()
    for t in screened:
        info = trial_info(t)
        truth = fn(DesignPoint.from_dict(info["point"])).ap
        candidate = np.vstack([feasible[["ap", "speedup"]].to_numpy(float), [truth, info["speedup_bops"]]])
        assert not pareto_mask(candidate)[-1] or np.isclose(candidate[:-1], candidate[-1]).all(axis=1).any()
    assert r.n_complete == 25


def test_constraints_mark_feasibility_and_min_speedup_is_checked_cheaply(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    r = run_sweep(_settings(min_speedup=1.3, max_map_drop=0.03), SyntheticAccuracy(), url, "k", 8, progress=False)
    study = _study(url, "k")
    ref = study.user_attrs["mixaq.baseline.uniform_high"]["ap"]
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        ap, speed = t.values
        c_map, c_speed = trial_info(t)["constraints"]
        assert math.isclose(c_map, (ref - 0.03) - ap) and math.isclose(c_speed, 1.3 - speed)
        assert speed >= 1.3  # slower proposals never paid for an mAP evaluation
    rejected = [trial_info(t) for t in study.get_trials(states=(TrialState.PRUNED,))
                if trial_info(t).get("outcome") == "rejected_min_speedup"]
    assert all(info["speedup_bops"] < 1.3 for info in rejected)
    assert all(row["ap"] >= ref - 0.03 - 1e-12 for _, row in r.front.iterrows())


def test_unreachable_min_speedup_is_a_one_line_error(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(MixaqError, match=r"--min-speedup 50 is unreachable") as err:
        run_sweep(_settings(min_speedup=50.0), SyntheticAccuracy(), url, "u", 3, progress=False)
    assert "\n" not in str(err.value)


def test_joining_with_other_settings_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(_settings(), SyntheticAccuracy(), url, "m", 2, progress=False)
    with pytest.raises(MixaqError, match=r"different settings \(cost, objectives\)"):
        run_sweep(SweepSettings(space=_settings().space, spec="bitfusion", cost="cycles", population_size=4),
                  SyntheticAccuracy(), url, "m", 2, progress=False)
    with pytest.raises(MixaqError, match="another model/data"):
        run_sweep(_settings(), SyntheticAccuracy(seed=5), url, "m", 2, progress=False)


def test_stale_heartbeat_trial_from_another_host_is_failed_and_retried(tmp_path):
    """A worker elsewhere died mid-trial: only its heartbeat stops. After the grace period a sweep
    fails the trial and runs it again with the same parameters."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    options = StorageOptions(heartbeat_interval_s=1, grace_period_s=1)
    # No dominance screen: the hand-made trial's random parameters could be screened (PRUNED) on retry.
    settings = _settings(screen=False)
    run_sweep(settings, SyntheticAccuracy(), url, "h", 2, progress=False, storage_options=options)
    storage = get_storage(url, options)
    study = optuna.load_study(study_name="h", storage=storage)
    with pytest.warns(UserWarning, match="Heartbeat"):  # we play the remote worker by hand
        trial = study.ask()
    settings.space.suggest(trial)
    trial.set_user_attr("worker", "some-other-host|12345|999")
    storage.record_heartbeat(trial._trial_id)
    time.sleep(2.5)
    r = run_sweep(settings, SyntheticAccuracy(), url, "h", 4, progress=False, storage_options=options)
    assert r.n_complete == 4
    trials = optuna.load_study(study_name="h", storage=storage).get_trials()
    assert trials[trial.number].state == TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params == trials[trial.number].params


def test_bits_and_strategy_knobs_with_tpe(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = SearchSpace(num_pairs=NANO.num_pairs, search_act_bits=True, search_weight_bits=True,
                        search_strategy=True, act_bit_choices=(2, 4, 8), weight_bit_choices=(4, 8))
    settings = SweepSettings(space=space, spec="bitfusion", cost="bops", sampler="tpe", population_size=3)
    r = run_sweep(settings, SyntheticAccuracy(), url, "b", 8, progress=False)
    assert r.n_complete == 8
    study = _study(url, "b")
    seen_strategies = set()
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        p = DesignPoint.from_dict(trial_info(t)["point"])
        assert p.low_act_bits <= p.high_act_bits and p.high_act_bits in (2, 4, 8) and p.weight_bits in (4, 8)
        assert {p.high_act_bits, p.low_act_bits} == {t.params["act_bits_a"], t.params["act_bits_b"]}
        seen_strategies.add(p.strategy)
    assert seen_strategies <= {"importance", "random", "reversed"}


def test_fixed_bits_the_spec_lacks_are_a_one_line_error(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = SearchSpace(num_pairs=NANO.num_pairs, low_act_bits=1, high_act_bits=8)
    with pytest.raises(MixaqError, match=r"--low-act-bits=1 is outside the range 2\.\.8 of accelerator 'bitfusion'"):
        run_sweep(SweepSettings(space=space, spec="bitfusion"), SyntheticAccuracy(), url, "x", 1, progress=False)
    with pytest.raises(MixaqError, match="no_such_spec"):
        run_sweep(SweepSettings(space=SearchSpace(num_pairs=2), spec="no_such_spec"), SyntheticAccuracy(), url,
                  "y", 1, progress=False)


def test_rejected_settings_leave_the_study_free_for_a_corrected_command(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(MixaqError, match="unreachable"):
        run_sweep(_settings(min_speedup=50.0), SyntheticAccuracy(), url, "fix", 2, progress=False)
    r = run_sweep(_settings(min_speedup=1.1), SyntheticAccuracy(), url, "fix", 2, progress=False)
    assert r.n_complete == 2


def test_dominance_verdict_on_a_hand_made_neighbourhood():
    from mixaq.search.space._objectives import objective_list
    from mixaq.search.fidelity._screen import REJECTED_DOMINATED, REJECTED_MAP, dominance_verdict

    blocks = 4

    def row(low, ap, speed, feasible=True, strategy="importance", pruned=0.0):
        low_f, pr = np.full(blocks, low), np.full(blocks, pruned)
        return {"high": 8, "low_bits": 4, "weight": 4, "strategy": strategy, "ap": ap, "feasible": feasible,
                "pruned": pr, "demoted": low_f + pr, "low_sum": low_f.sum(), "pruned_sum": pr.sum(),
                "speedup_bops": speed}

    import pandas as pd

    known = pd.DataFrame([row(0.0, 0.50, 1.0, feasible=False), row(0.5, 0.45, 1.5)])

    def verdict(low, speed, strategy="importance", floor=None, pruned=0.0):
        p = DesignPoint(8, 4, 4, (low,) * 2, (pruned,) * 2, strategy=strategy)
        return dominance_verdict(known, p, np.full(blocks, low), np.full(blocks, pruned), {"speedup_bops": speed},
                                 objective_list(["map", "speedup_bops"]), 0.0, floor)

    # Demotes more than the 0.45-mAP point, and that point is at least as fast: dominated.
    assert verdict(0.6, 1.4) == REJECTED_DOMINATED
    # Faster than everything measured: could extend the front.
    assert verdict(0.6, 1.6) is None
    # Demotes less: only the uniform point bounds it (0.50) and nothing measured beats that.
    assert verdict(0.4, 1.2) is None
    # Its bound (0.45) is already under the mAP floor.
    assert verdict(0.6, 1.6, floor=0.48) == REJECTED_MAP
    # Another strategy: only the undemoted point is comparable (bound 0.50) -> not rejected.
    assert verdict(0.6, 1.4, strategy="reversed") is None
    # Pruning the windows that point made low-bit (and more) demotes every window at least as far.
    assert verdict(0.0, 1.4, pruned=0.6) == REJECTED_DOMINATED
    # A pruned neighbour does not bound a point that only lowers bits: pruning is the deeper demotion.
    known.loc[1, ["pruned", "demoted", "low_sum", "pruned_sum"]] = pd.Series(
        {"pruned": np.full(blocks, 0.5), "demoted": np.full(blocks, 0.5), "low_sum": 0.0, "pruned_sum": 2.0})
    assert verdict(0.6, 1.4) is None


def test_a_study_costed_by_another_cost_model_is_refused_before_any_trial(tmp_path):
    """A resumed study whose stored costs another simulator computed (here: its uniform-high
    baseline's cycles edited, as a cost-model change would move them) is refused in one line,
    before a trial runs: its front would otherwise mix two models' speedups."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    factory = CountingFactory(SyntheticAccuracy())
    run_sweep(_settings(), factory, url, "m", 2, progress=False)
    study = _study(url, "m")
    key = next(k for k in study.user_attrs if k.endswith("uniform_high"))
    entry = dict(study.user_attrs[key])
    run_sweep(_settings(), factory, url, "m", 3, progress=False)  # the same model: resumes
    study.set_user_attr(key, {**entry, "cycles": entry["cycles"] * 1.02})
    CountingFactory.calls = []
    with pytest.raises(MixaqError, match="costed by another cost model.*cycles"):
        run_sweep(_settings(), factory, url, "m", 5, progress=False)
    assert CountingFactory.calls == [] and len(_study(url, "m").get_trials(states=(TrialState.COMPLETE,))) == 3


def test_a_trial_another_process_finished_first_does_not_stop_the_sweep(tmp_path):
    """Two workers can pop the same WAITING (retried) trial: Optuna's pop reads then writes, which
    SQLite does not make atomic, and under load both run it (seen once in the suite as "Cannot tell a
    COMPLETE trial" killing a resumed `--workers 2` sweep). The one that tells second keeps going."""
    from mixaq.search.study._study import StudyHandle
    from mixaq.search.study._sweep import _fill

    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(_settings(), SyntheticAccuracy(), url, "twice", 1, progress=False)
    study = _study(url, "twice")
    handle = StudyHandle.join(study, None, SyntheticAccuracy())
    handle.n_trials = 3
    inner, told = handle.objective, []

    def objective(trial):
        values = inner(trial)
        if not told:  # the other process tells this trial first
            _study(url, "twice").tell(trial.number, values)
            told.append(trial.number)
        return values

    handle.objective = objective
    _fill(handle, StorageOptions())
    complete = _study(url, "twice").get_trials(states=(TrialState.COMPLETE,))
    assert told and len(complete) == 3 and told[0] in [t.number for t in complete]
