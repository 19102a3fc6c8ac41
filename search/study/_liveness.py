"""Which RUNNING trials belong to dead workers: same-host pids at once, the rest by heartbeat."""
from __future__ import annotations

import copy
import datetime as dt
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mixaq.search.study._storage import WORKER_ATTR, RetryDeadTrial

__all__ = ["worker_id", "reap_dead_trials", "is_alive_here", "die_with_parent"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PARENT_POLL_S = 0.5


def _start_token(pid: int) -> str | None:
    # Field 22 of /proc/PID/stat is the start time: a reused pid gets a different token. A zombie
    # (state Z/X: killed, not yet reaped, e.g. an orphan under a container's PID 1) counts as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def die_with_parent(parent_pid: int, *, use_pdeathsig: bool = True) -> None:
    """Make this (worker) process exit as soon as `parent_pid` dies, kill -9 included.

    Linux: the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG). Everywhere, and
    as a fallback: a daemon thread polls the parent pid twice a second. A worker orphaned this way
    leaves a RUNNING trial that the next run reaps (dead pid) and retries.
    """
    if use_pdeathsig and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="mixaq-parent-watch", daemon=True).start()


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
