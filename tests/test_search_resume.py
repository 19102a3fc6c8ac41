"""A sweep killed with SIGKILL mid-study resumes with the same command: completed trials are kept,
the trial that was running is failed and retried, nothing is lost or duplicated."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mixaq.search import get_storage
from mixaq.simulator import MixaqError

REPO = Path(__file__).resolve().parent.parent
N_TRIALS = 8

SCRIPT = textwrap.dedent("""
    import sys
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, StorageOptions, run_sweep
    url, n = sys.argv[1], int(sys.argv[2])
    factory = SyntheticAccuracy(arch_name="swin_nano", image_hw=(64, 64), delay_s=0.4)
    space = SearchSpace(num_pairs=2, search_prune=True)
    settings = SweepSettings(space=space, spec="bitfusion", cost="bops", screen=False, population_size=4)
    r = run_sweep(settings, factory, url, "resume", n, progress=False,
                  storage_options=StorageOptions(heartbeat_interval_s=1, grace_period_s=3))
    print("COMPLETE", r.n_complete)
""")


def _launch(tmp_path: Path, url: str) -> subprocess.Popen:
    script = tmp_path / "sweep.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(script), url, str(N_TRIALS)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _snapshot(url: str) -> list[optuna.trial.FrozenTrial]:
    # A reader never creates the schema: the child may be creating it right now.
    study = optuna.load_study(study_name="resume", storage=get_storage(url, create=False))
    return study.get_trials(deepcopy=True)


def test_kill_9_mid_study_then_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _launch(tmp_path, url)
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "sweep made no progress"
            if (tmp_path / "study.db").exists():
                try:
                    trials = _snapshot(url)
                except (MixaqError, KeyError):  # schema or study not created by the child yet
                    trials = []
                done = [t for t in trials if t.state == TrialState.COMPLETE]
                running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
                if len(done) >= 3 and running:
                    break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    before = _snapshot(url)
    done_before = {t.number: t.values for t in before if t.state == TrialState.COMPLETE}
    killed = [t.number for t in before if t.state == TrialState.RUNNING]
    assert 3 <= len(done_before) < N_TRIALS
    assert killed, "the kill should land while a trial runs"

    # Same command again: runs only the missing trials.
    proc = _launch(tmp_path, url)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert f"COMPLETE {N_TRIALS}" in out

    after = _snapshot(url)
    done_after = {t.number: t.values for t in after if t.state == TrialState.COMPLETE}
    assert len(done_after) == N_TRIALS  # exactly: nothing duplicated, nothing missing
    for number, values in done_before.items():  # nothing lost or rewritten
        assert done_after[number] == values
    by_number = {t.number: t for t in after}
    for number in killed:
        assert by_number[number].state == TrialState.FAIL
        retries = [t for t in after if t.user_attrs.get("retry_of") == number]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        # The retry keeps every parameter the killed trial had drawn (all of them, unless the kill
        # landed between two draws: then the rest are drawn anew).
        drawn = by_number[number].params
        assert drawn and {name: retries[0].params.get(name) for name in drawn} == drawn
    assert not [t for t in after if t.state == TrialState.RUNNING]
