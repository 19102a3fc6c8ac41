"""Processes that join one study at the same moment (as on several machines) measure every
configuration once and draw different proposals: SQLite here, PostgreSQL where MIXAQ_PG_URL is set."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mixaq.search import get_storage
from mixaq.search.study._study import trial_info

REPO = Path(__file__).resolve().parent.parent
N_TRIALS = 12

# Each process waits until both are ready, then runs the same sweep; every real measurement is
# appended to a log (one line per evaluation, with the cache key the study uses).
SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from dataclasses import dataclass
    from pathlib import Path
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, StorageOptions, config_key, run_sweep

    url, study, n, log, tiny, barrier = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1", sys.argv[6]

    @dataclass(frozen=True)
    class Logged(SyntheticAccuracy):
        log: str = ""

        def evaluate(self, point):
            r = super().evaluate(point)
            key = config_key(point, r.assignment.low_fraction, r.assignment.pruned_fraction)
            with open(self.log, "a") as fh:
                fh.write(json.dumps({"pid": os.getpid(), "key": key}) + "\\n")
            return r

    space = (SearchSpace(num_pairs=2, ratio_choices=(0.0, 0.5)) if tiny
             else SearchSpace(num_pairs=2, search_prune=True))
    settings = SweepSettings(space=space, spec="bitfusion", cost="bops", screen=False, population_size=4)
    Path(barrier, str(os.getpid())).touch()
    while len(os.listdir(barrier)) < 2:
        time.sleep(0.005)
    r = run_sweep(settings, Logged(delay_s=0.3, log=log), url, study, n, progress=False,
                  storage_options=StorageOptions(heartbeat_interval_s=1, grace_period_s=5))
    print("COMPLETE", r.n_complete)
""")


def _run_two_together(tmp_path: Path, url: str, study: str, tiny: bool) -> tuple[list[dict], optuna.Study]:
    script, log, barrier = tmp_path / "sweep.py", tmp_path / "measured.jsonl", tmp_path / "barrier"
    script.write_text(SCRIPT)
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(script), url, study, str(N_TRIALS), str(log), str(int(tiny)),
                               str(barrier)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert f"COMPLETE {N_TRIALS}" in out
    measured = [json.loads(line) for line in log.read_text().splitlines()]
    return measured, optuna.load_study(study_name=study, storage=get_storage(url, create=False))


def _check_measured_once(measured: list[dict], study: optuna.Study) -> list:
    trials = study.get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == N_TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    twice = {k: n for k, n in Counter(m["key"] for m in measured).items() if n > 1}
    assert not twice, f"configurations measured more than once: {twice}"
    keys = {m["key"] for m in measured}
    infos = [trial_info(t) for t in done]
    assert {i["config_key"] for i in infos} <= keys  # every completed trial's mAP was measured once
    evaluated = [i["config_key"] for i in infos if i["outcome"] == "evaluated"]
    # completed trials = distinct configurations measured by trials + trials served from the cache
    assert len(evaluated) == len(set(evaluated))
    assert len(evaluated) + sum(i["outcome"] == "cached" for i in infos) == N_TRIALS
    assert len({m["pid"] for m in measured}) == 2  # both processes did real work
    # Every cached mAP (trials and baselines) came from exactly one measurement.
    cache = {k.removeprefix("mixaq.map.") for k in study.user_attrs if k.startswith("mixaq.map.")}
    assert cache == keys and len(measured) == len(cache)
    return done


def _check_different_proposals(done: list) -> None:
    by_worker: dict[str, list] = {}
    for t in sorted(done, key=lambda t: t.number):
        by_worker.setdefault(trial_info(t)["worker"], []).append(t.params)
    assert len(by_worker) == 2
    first_a, first_b = (params[0] for params in by_worker.values())
    assert first_a != first_b  # the same seed in both would propose the same first configuration
    keys = [trial_info(t)["config_key"] for t in done]
    assert len(set(keys)) >= N_TRIALS - 2, keys


def _urls() -> list:
    pg = os.environ.get("MIXAQ_PG_URL")
    return ["sqlite", pytest.param("postgresql", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not pg, reason="MIXAQ_PG_URL not set (.ci/run sets it)")])]


@pytest.mark.parametrize("backend", _urls())
def test_two_processes_started_together_measure_each_configuration_once(tmp_path, backend):
    url = f"sqlite:///{tmp_path / 'study.db'}" if backend == "sqlite" else os.environ["MIXAQ_PG_URL"]
    study = f"together-{uuid.uuid4().hex[:8]}"
    try:
        measured, stored = _run_two_together(tmp_path, url, study, tiny=False)
        done = _check_measured_once(measured, stored)
        _check_different_proposals(done)
    finally:
        if backend != "sqlite":
            optuna.delete_study(study_name=study, storage=get_storage(url))


def test_two_processes_in_a_tiny_space_share_every_measurement(tmp_path):
    """Four configurations, twelve trials: most proposals collide, in time too. Each configuration is
    measured by one process; the other waits for that result instead of measuring it again."""
    measured, stored = _run_two_together(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", "tiny", tiny=True)
    done = _check_measured_once(measured, stored)
    assert len({trial_info(t)["config_key"] for t in done}) <= 4
    assert sum(trial_info(t)["outcome"] == "cached" for t in done) >= N_TRIALS - 4


def test_trial_seeds_make_a_fresh_study_reproducible_and_trials_distinct(tmp_path):
    """Seeds come from (--seed, trial number): the same command on a fresh study proposes the same
    trials; another --seed proposes others."""
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
    from mixaq.search.study._seeding import trial_seed

    assert len({trial_seed(0, n) for n in range(1000)}) == 1000
    assert trial_seed(0, 5) != trial_seed(1, 5)

    def params(seed: int, name: str) -> list[dict]:
        settings = SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion", screen=False,
                                 population_size=4, seed=seed, baseline_points=0)
        url = f"sqlite:///{tmp_path / (name + '.db')}"
        run_sweep(settings, SyntheticAccuracy(), url, "r", 5, progress=False)
        study = optuna.load_study(study_name="r", storage=get_storage(url, create=False))
        return [t.params for t in sorted(study.get_trials(), key=lambda t: t.number)]

    first = params(0, "a")
    assert params(0, "b") == first
    assert params(1, "c") != first
