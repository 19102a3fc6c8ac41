"""Several processes fill one study: exactly n_trials completed, every number once, both worked."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, get_storage, run_sweep
from mixaq.search.study._study import trial_info

REPO = Path(__file__).resolve().parent.parent
N_TRIALS = 12


def _settings() -> SweepSettings:
    return SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion", cost="bops",
                         population_size=4, screen=False)


def _check(url: str, name: str) -> None:
    study = optuna.load_study(study_name=name, storage=get_storage(url))
    trials = study.get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == N_TRIALS
    assert len({t.number for t in trials}) == len(trials)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    workers = {trial_info(t)["worker"].split("|")[1] for t in done}
    assert len(workers) == 2, workers  # both processes ran trials
    assert str(os.getpid()) not in workers  # the parent only coordinates


def test_two_local_workers_on_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    r = run_sweep(_settings(), SyntheticAccuracy(delay_s=0.6), url, "w", N_TRIALS, workers=2, progress=False)
    assert r.n_complete == N_TRIALS
    _check(url, "w")


SCRIPT = textwrap.dedent("""
    import sys
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
    settings = SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion", cost="bops",
                             population_size=4, screen=False)
    r = run_sweep(settings, SyntheticAccuracy(delay_s=0.6), sys.argv[1], "j", int(sys.argv[2]), progress=False)
    print("COMPLETE", r.n_complete)
""")


def test_two_independent_processes_on_one_journal_file(tmp_path):
    """Two separate `sweep` invocations (as on two machines) on a journal storage."""
    url = f"journal:{tmp_path / 'study.log'}"
    # The study is created once first (settings are part of the study, seed included).
    run_sweep(_settings(), SyntheticAccuracy(delay_s=0.6), url, "j", 0, progress=False)
    script = tmp_path / "w.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(script), url, str(N_TRIALS)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        assert f"COMPLETE {N_TRIALS}" in out
    _check(url, "j")
