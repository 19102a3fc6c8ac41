"""The distributed path on a real PostgreSQL server (`.ci/run` starts one and sets MIXAQ_PG_URL)."""
from __future__ import annotations

import os
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, get_storage, run_sweep
from mixaq.search.study._study import trial_info
from mixaq.search.cli import main

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("MIXAQ_PG_URL"), reason="MIXAQ_PG_URL not set (.ci/run sets it)"),
]
N_TRIALS = 10


def test_two_workers_share_a_postgres_study_and_plot_redraws_from_it(tmp_path):
    url = os.environ["MIXAQ_PG_URL"]
    name = f"pg-{uuid.uuid4().hex[:8]}"
    settings = SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion",
                             population_size=4, screen=False)
    try:
        r = run_sweep(settings, SyntheticAccuracy(delay_s=0.6), url, name, N_TRIALS, workers=2, progress=False)
        assert r.n_complete == N_TRIALS
        study = optuna.load_study(study_name=name, storage=get_storage(url))
        trials = study.get_trials()
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(done) == N_TRIALS
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
        assert len({trial_info(t)["worker"] for t in done}) == 2
        # A second process with the same command finds the study full and runs nothing.
        again = run_sweep(settings, SyntheticAccuracy(delay_s=0.6), url, name, N_TRIALS, progress=False)
        assert again.n_complete == N_TRIALS and again.n_evaluated_here == 0
        assert main(["plot", "--storage", url, "--study", name, "--out", str(tmp_path)]) == 0
        assert (tmp_path / "pareto.png").stat().st_size > 0
    finally:
        try:
            optuna.delete_study(study_name=name, storage=get_storage(url))
        except KeyError:
            pass
