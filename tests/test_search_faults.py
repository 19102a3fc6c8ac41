"""Faults around a shared study: a fresh storage opened by several processes at once, a killed
parent's workers, a server that never answers, readers that must not write, dead claim holders."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mixaq.search import SearchSpace, StorageOptions, SweepSettings, SyntheticAccuracy, get_storage, run_sweep
from mixaq.search.study._claim import CLAIM_PREFIX, ClaimBook
from mixaq.search.study._liveness import _start_token
from mixaq.search.study._study import trial_info
from mixaq.search.cli import main
from mixaq.simulator import MixaqError

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _gone(pid: int) -> bool:
    return _start_token(pid) is None  # no such process, or a zombie nobody reaped yet


# -- several processes open one fresh storage at the same moment --------------------------------

OPEN_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from mixaq.search import get_storage
    from mixaq.search.study._storage import open_study
    url, barrier, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Path(barrier, str(os.getpid())).touch()
    while len(os.listdir(barrier)) < n:
        time.sleep(0.001)
    open_study(get_storage(url), "s", ["maximize"], None)
""")


def test_processes_opening_one_fresh_sqlite_storage_together_all_succeed(tmp_path):
    """Used to fail about one time in three: 'table studies already exists' for the slower process;
    then, under load, 'database is locked' from switching the fresh file to WAL."""
    script = tmp_path / "open.py"
    script.write_text(OPEN_SCRIPT)
    n = 3
    for round_ in range(3):
        barrier = tmp_path / f"barrier{round_}"
        barrier.mkdir()
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        procs = [subprocess.Popen([sys.executable, str(script), url, str(barrier), str(n)], env=ENV,
                                  stderr=subprocess.PIPE, text=True) for _ in range(n)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        optuna.get_all_study_summaries(get_storage(url, create=False))


# -- kill -9 of a `--workers 2` parent ------------------------------------------------------------

WORKERS_SCRIPT = textwrap.dedent("""
    import sys
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, StorageOptions, run_sweep
    if __name__ == "__main__":  # spawned workers import this file again
        settings = SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion", screen=False,
                                 population_size=4)
        r = run_sweep(settings, SyntheticAccuracy(delay_s=float(sys.argv[3])), sys.argv[1], "orphans",
                      int(sys.argv[2]), workers=2, progress=False,
                      storage_options=StorageOptions(heartbeat_interval_s=1, grace_period_s=3))
        print("COMPLETE", r.n_complete)
""")


def _worker_pids(url: str, parent: int) -> set[int]:
    try:
        study = optuna.load_study(study_name="orphans", storage=get_storage(url, create=False))
    except (MixaqError, KeyError):  # not created yet
        return set()
    running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    pids = {int(trial_info(t)["worker"].split("|")[1]) for t in running if "worker" in t.user_attrs}
    return pids - {parent}


def test_kill_9_of_the_workers_parent_leaves_no_orphan_and_resume_completes(tmp_path):
    url, n = f"sqlite:///{tmp_path / 'study.db'}", 8
    script = tmp_path / "workers.py"
    script.write_text(WORKERS_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), url, str(n), "1.0"], env=ENV, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, workers = time.monotonic() + 180, set()
    try:
        while len(workers) < 2:
            assert parent.poll() is None, parent.communicate()
            assert time.monotonic() < deadline, "workers never ran a trial"
            workers |= _worker_pids(url, parent.pid)
            time.sleep(0.1)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        killed_at = time.monotonic()
        while not all(_gone(pid) for pid in workers):
            assert time.monotonic() - killed_at < 5.0, f"workers {workers} outlived their parent by 5 s"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    # The same command again: the dead workers' trials are reaped at once (dead pids) and retried.
    again = subprocess.run([sys.executable, str(script), url, str(n), "0.1"], env=ENV, cwd=tmp_path,
                           capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert f"COMPLETE {n}" in again.stdout
    trials = optuna.load_study(study_name="orphans", storage=get_storage(url, create=False)).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n


WATCHDOG_SCRIPT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import os, sys, time; from mixaq.search.study._liveness import die_with_parent; "
        "die_with_parent(int(sys.argv[1]), use_pdeathsig=False); print(os.getpid(), flush=True); time.sleep(120)",
        str(__import__("os").getpid())], stdout=subprocess.PIPE, text=True)
    print(child.stdout.readline().strip(), flush=True)
    time.sleep(120)
""")


def test_parent_watchdog_alone_ends_an_orphan(tmp_path):
    """Without the kernel's parent-death signal (non-Linux), the polling thread still ends the worker."""
    parent = subprocess.Popen([sys.executable, "-c", WATCHDOG_SCRIPT], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        killed_at = time.monotonic()
        while not _gone(child):
            assert time.monotonic() - killed_at < 3.0, "the orphan outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


# -- a server that accepts the connection and never answers ---------------------------------------

@pytest.fixture
def silent_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []

    def accept() -> None:
        while True:
            try:
                held.append(srv.accept()[0])  # keep it open, never send a byte
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()
    for conn in held:
        conn.close()


def test_silent_postgres_server_is_a_one_line_error_within_the_timeout(silent_server, tmp_path, capsys):
    url = f"postgresql://mixaq:secret@127.0.0.1:{silent_server}/db"
    start = time.monotonic()
    with pytest.raises(MixaqError, match="timeout expired") as info:
        get_storage(url, StorageOptions(connect_timeout_s=1))
    assert time.monotonic() - start < 5
    assert "\n" not in str(info.value) and "secret" not in str(info.value)
    # The command line, default timeouts: one line, exit 2, well within 10 s.
    start = time.monotonic()
    rc = main(["plot", "--storage", url, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert time.monotonic() - start < 10
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("mixaq plot: error: storage: cannot open")


# -- readers never write ---------------------------------------------------------------------------

def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plot_writes_nothing_into_a_file_that_is_not_a_study(tmp_path, capsys):
    empty = tmp_path / "empty.db"
    empty.touch()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    before = _digest(foreign)
    for path, needle in ((empty, "holds no Optuna studies"), (foreign, "holds no Optuna studies")):
        assert main(["plot", "--storage", f"sqlite:///{path}", "--out", str(tmp_path / "plots")]) == 2
        assert needle in capsys.readouterr().err
    assert empty.stat().st_size == 0
    assert _digest(foreign) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "foreign.db"]


def test_plot_on_a_study_without_trials_is_a_one_line_error(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
    run_sweep(settings, SyntheticAccuracy(), url, "empty", 0, progress=False)
    assert main(["plot", "--storage", url, "--study", "empty", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mixaq plot: error: study 'empty' has no completed trials yet: nothing to plot"


# -- claims: one live holder measures; a dead or silent one is taken over ---------------------------

def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=get_storage(f"sqlite:///{tmp_path / 'c.db'}"), study_name="c",
                               directions=["maximize", "maximize"])


def test_a_live_claim_holds_and_a_dead_holder_is_taken_over(tmp_path):
    study = _study(tmp_path)
    host = socket.gethostname()
    me = ClaimBook(study, f"{host}|{os.getpid()}|{_start_token(os.getpid())}", heartbeat_s=1, grace_s=60)
    other = ClaimBook(study, f"{host}|{os.getppid()}|{_start_token(os.getppid())}", heartbeat_s=1, grace_s=60)
    assert me.take("k") == 0
    assert other.take("k") is None  # I am alive: the claim holds
    assert me.take("k") is None  # nobody, not even the holder, claims twice
    # A holder that died on this host (kill -9): the next process takes generation 1 at once.
    study._storage.set_study_system_attr(study._study_id, f"{CLAIM_PREFIX}dead.0", {"worker": f"{host}|999999999|1"})
    assert other.take("dead") == 1
    assert me.take("dead") is None


def test_a_silent_remote_holder_is_taken_over_after_the_grace_period(tmp_path):
    study = _study(tmp_path)
    study._storage.set_study_system_attr(study._study_id, f"{CLAIM_PREFIX}k.0", {"worker": "elsewhere|1|1"})
    waiter = ClaimBook(study, f"{socket.gethostname()}|{os.getpid()}|x", heartbeat_s=1, grace_s=1)
    assert waiter.take("k") is None  # its beat may still move: wait a grace period first
    time.sleep(1.2)
    assert waiter.take("k") == 1


def test_a_beating_holder_is_not_taken_over_and_a_failed_one_releases(tmp_path):
    study = _study(tmp_path)
    holder = ClaimBook(study, "elsewhere|1|1", heartbeat_s=0.2, grace_s=0.6)
    waiter = ClaimBook(study, "another|2|2", heartbeat_s=0.2, grace_s=0.6)
    gen = holder.take("k")
    with holder.holding("k", gen):
        for _ in range(10):  # 1.5 s, more than twice the grace period
            assert waiter.take("k") is None
            time.sleep(0.15)
    with pytest.raises(RuntimeError):
        with holder.holding("k2", holder.take("k2")):
            raise RuntimeError("the measurement failed")
    assert waiter.take("k2") == 1  # released: no grace period to wait


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_exactly_one_of_many_racing_claims_wins(tmp_path, kind):
    """The claim is an atomic insert: RDB storages by the attribute table's unique key, journal
    storages by a file lock. Eight racers, each with its own storage object, one winner per key."""
    from concurrent.futures import ThreadPoolExecutor

    from mixaq.search.study._claim import insert_if_absent

    url = f"sqlite:///{tmp_path / 'r.db'}" if kind == "sqlite" else f"journal:{tmp_path / 'r.log'}"
    optuna.create_study(storage=get_storage(url), study_name="r", directions=["maximize", "maximize"])
    studies = [optuna.load_study(study_name="r", storage=get_storage(url)) for _ in range(8)]
    # A broken claim lets several racers win often, not always: race for many keys (cheap).
    for key in [f"k{i}" for i in range(12 if kind == "sqlite" else 80)]:
        barrier = threading.Barrier(len(studies))

        def race(study: optuna.Study, i: int) -> bool:
            barrier.wait()
            return insert_if_absent(study, f"{CLAIM_PREFIX}{key}.0", {"worker": str(i)})

        with ThreadPoolExecutor(len(studies)) as pool:
            won = list(pool.map(race, studies, range(len(studies))))
        assert sum(won) == 1, won
        attrs = studies[0]._storage.get_study_system_attrs(studies[0]._study_id)
        holder = attrs[f"{CLAIM_PREFIX}{key}.0"]["worker"]
        assert won[int(holder)]  # the stored holder is the one that was told it won
