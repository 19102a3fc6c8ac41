"""Which RUNNING trials belong to dead workers: same-host pids at once, the rest by heartbeat."""
from __future__ import annotations

import copy
import datetime as dt
import os
import socket
from pathlib import Path
from typing import Any

from mixaq.search._storage import WORKER_ATTR, RetryDeadTrial

__all__ = ["worker_id", "reap_dead_trials", "is_alive_here"]


def _start_token(pid: int) -> str | None:
    # Field 22 of /proc/PID/stat is the start time: a reused pid gets a different token.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def worker_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{_start_token(pid) or '-'}"


def is_alive_here(worker: str) -> bool | None:
    """True/False for a worker on this host, None when it runs elsewhere (only heartbeats can tell)."""
    try:
        host, pid_s, token = worker.split("|")
        pid = int(pid_s)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    if Path("/proc").is_dir():
        now = _start_token(pid)
        return now is not None and (token == "-" or now == token)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_trials(study: Any, retry: RetryDeadTrial, orphan_after_s: float) -> list[int]:
    """Fail (and re-queue) RUNNING trials whose same-host worker is gone, and RUNNING trials that never
    recorded a worker for `orphan_after_s` (killed between ask and the first attribute write).

    Remote workers are left to Optuna's heartbeat (`fail_stale_trials`), which is called here too.
    Returns the numbers of the trials failed by this call.
    """
    import optuna
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)
    storage, failed = study._storage, []
    now = dt.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker is not None:
            dead = is_alive_here(worker) is False
        else:
            started = trial.datetime_start or now
            dead = (now - started).total_seconds() > orphan_after_s
        if not dead:
            continue
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker reaped it first
        failed.append(trial.number)
        retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    return failed
