"""One place that turns a storage URL into an Optuna storage, with heartbeats and one-line errors."""
from __future__ import annotations

import importlib.util
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixaq.simulator._errors import MixaqError

__all__ = ["StorageOptions", "get_storage", "redact_url", "default_storage_url", "open_study", "RetryDeadTrial",
           "WORKER_ATTR"]

# Trial user attr naming the process running it ("host|pid|start-token"); see search._worker.
WORKER_ATTR = "worker"

# Stale RUNNING trials (a worker killed with -9 on another machine) are failed and re-queued once
# their heartbeat is older than the grace period. Same-host dead workers are reaped at once by pid.
_DEFAULT_HEARTBEAT_S = 5
_DEFAULT_GRACE_S = 20

_SCHEMES = ("sqlite", "postgresql", "mysql", "journal")


@dataclass(frozen=True)
class StorageOptions:
    heartbeat_interval_s: int = _DEFAULT_HEARTBEAT_S
    grace_period_s: int = _DEFAULT_GRACE_S
    # Retries per trial that died mid-run; a trial that kills its worker repeatedly stops here.
    max_retry: int = 3
    # SQLite waits this long for a lock held by another worker process instead of failing.
    sqlite_timeout_s: float = 60.0


class RetryDeadTrial:
    """Re-queue a trial whose worker died (heartbeat stale or pid gone) as a WAITING trial with the
    same parameters, at most `max_retry` times. Unlike Optuna's RetryHeartbeatStaleTrialCallback it
    drops the dead worker's identity, so the retry is never mistaken for a dead trial itself."""

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: Any, trial: Any) -> None:
        import optuna

        system_attrs = {"failed_trial": trial.number, "retry_history": [], **trial.system_attrs}
        system_attrs["retry_history"] = [*system_attrs["retry_history"], trial.number]
        if len(system_attrs["retry_history"]) > self.max_retry:
            return
        study.add_trial(optuna.create_trial(
            state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            user_attrs={"retry_of": int(system_attrs["failed_trial"])}, system_attrs=system_attrs,
        ))


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***` (for messages and logs)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def default_storage_url(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"


def _scheme(url: str) -> str:
    head = url.split(":", 1)[0].lower()
    return head.split("+", 1)[0]


def _journal_path(url: str) -> Path:
    # journal:///abs/path.log, journal://rel/path.log and journal:path.log all name a file.
    rest = url.split(":", 1)[1]
    path = rest[2:] if rest.startswith("//") else rest
    if not path or path.endswith("/"):
        raise MixaqError(f"storage: journal URL {url!r} names no file (use journal:PATH.log)")
    return Path(path)


def _with_available_driver(url: str) -> str:
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2, so say so explicitly.
    if url.lower().startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def get_storage(url: str, options: StorageOptions = StorageOptions(), *, create: bool = True) -> Any:
    """An Optuna storage for `url`: `sqlite:///FILE`, `postgresql://…`, `mysql://…` or `journal:FILE`.

    RDB storages record heartbeats so a killed worker's RUNNING trial is failed and re-queued
    (`RetryDeadTrial`). `create=False` (readers such as `mixaq plot`) refuses to create a new
    SQLite/journal file. Any problem (unknown scheme, missing directory, server
    unreachable, missing driver) raises `MixaqError` with one line naming the URL.
    """
    with warnings.catch_warnings():
        # Heartbeats and the retry callback are flagged experimental; they are what resume relies on.
        warnings.simplefilter("ignore", category=Warning)
        return _get_storage(url, options, create)


def _get_storage(url: str, options: StorageOptions, create: bool) -> Any:
    import optuna

    if not isinstance(url, str) or ":" not in url:
        raise MixaqError(f"storage: {url!r} is not a storage URL (use {', '.join(s + ':' for s in _SCHEMES)}…)")
    scheme = _scheme(url)
    shown = redact_url(url)
    if scheme not in _SCHEMES:
        raise MixaqError(f"storage: unsupported URL scheme {scheme!r} in {shown!r} (use sqlite:///FILE, "
                         "postgresql://USER@HOST/DB, mysql://…, or journal:FILE)")
    retry = RetryDeadTrial(options.max_retry)
    if scheme == "journal":
        path = _journal_path(url)
        if not path.parent.is_dir():
            raise MixaqError(f"storage: directory {str(path.parent)!r} of {shown!r} does not exist")
        if not create and not path.is_file():
            raise MixaqError(f"storage: journal file {str(path)!r} does not exist")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        # Journal storages keep no heartbeats; dead same-host workers are still reaped by pid.
        return JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        path_part = url.split(":///", 1)[1] if ":///" in url else ""
        if not path_part or path_part == ":memory:":
            raise MixaqError(f"storage: {shown!r} names no database file (use sqlite:///PATH/study.db)")
        parent = Path(path_part).parent
        if not parent.is_dir():
            raise MixaqError(f"storage: directory {str(parent)!r} of {shown!r} does not exist")
        if not create and not Path(path_part).is_file():
            raise MixaqError(f"storage: database file {path_part!r} does not exist")
        engine_kwargs = {"connect_args": {"timeout": options.sqlite_timeout_s}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    try:
        storage = optuna.storages.RDBStorage(
            _with_available_driver(url),
            engine_kwargs=engine_kwargs,
            heartbeat_interval=options.heartbeat_interval_s,
            grace_period=options.grace_period_s,
            heartbeat_stale_trial_callback=retry,
        )
        if scheme == "sqlite":
            _fast_sqlite(storage.engine)
        return storage
    except ImportError as exc:
        raise MixaqError(f"storage: driver for {shown!r} is not installed ({exc.name or exc})") from None
    except Exception as exc:  # sqlalchemy/driver errors carry multi-line reports; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MixaqError(f"storage: cannot open {shown!r}: {first}") from None


def _fast_sqlite(engine: Any) -> None:
    """WAL journal + synchronous=NORMAL: a commit no longer waits for an fsync (~10 ms each, and a
    trial makes dozens). Still safe against a killed process (kill -9); only an OS crash can lose
    the last commits. WAL needs a local filesystem, as SQLite locking does anyway."""
    from sqlalchemy import event

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened during setup predate the listener


def open_study(storage: Any, study_name: str, directions: list[str], sampler: Any) -> Any:
    """Create the study or join it; a study with other objectives is a one-line error."""
    import optuna

    study = optuna.create_study(
        storage=storage, study_name=study_name, directions=directions, sampler=sampler, load_if_exists=True
    )
    have = [d.name.lower() for d in study.directions]
    if have != [d.lower() for d in directions]:
        raise MixaqError(f"study {study_name!r} exists with directions {have}, not {directions}")
    return study
