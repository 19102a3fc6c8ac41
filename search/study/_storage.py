"""One place that turns a storage URL into an Optuna storage, with heartbeats and one-line errors."""
from __future__ import annotations

import importlib.util
import random
import re
import sqlite3
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixaq.core._errors import MixaqError, first_line

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
    # Server storages (PostgreSQL, MySQL): a server that accepts the connection but never answers
    # fails the connect after this long instead of hanging the sweep.
    connect_timeout_s: int = 5
    # Server-side limit on one statement (PostgreSQL statement_timeout, MySQL read/write timeouts);
    # TCP keepalives and tcp_user_timeout notice a dead server or network within about as long.
    statement_timeout_s: int = 120

    def __post_init__(self) -> None:
        for name, flag in (("heartbeat_interval_s", "--heartbeat"), ("grace_period_s", "--grace"),
                           ("connect_timeout_s", "connect_timeout_s"), ("statement_timeout_s", "statement_timeout_s")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MixaqError(f"{flag} must be a whole number of seconds >= 1, got {value!r}")
        if self.grace_period_s < self.heartbeat_interval_s:
            raise MixaqError(f"--grace {self.grace_period_s} is shorter than --heartbeat {self.heartbeat_interval_s}: "
                             "live trials would be failed between two heartbeats")
        if not self.sqlite_timeout_s > 0:
            raise MixaqError(f"sqlite_timeout_s must be > 0, got {self.sqlite_timeout_s!r}")
        if isinstance(self.max_retry, bool) or not isinstance(self.max_retry, int) or self.max_retry < 0:
            raise MixaqError(f"max_retry must be an integer >= 0, got {self.max_retry!r}")


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
    (`RetryDeadTrial`). Several processes may open one fresh storage at the same moment: the one
    that loses the race to create the schema retries and uses the winner's. `create=False`
    (readers: `mixaq plot`, tests) never writes: the file or database must already hold Optuna's
    tables. Servers get connect and statement timeouts (`StorageOptions`). Any problem (unknown
    scheme, missing directory, server unreachable or silent, missing driver) raises `MixaqError`
    with one line naming the URL.
    """
    with warnings.catch_warnings():
        # Heartbeats and the retry callback are flagged experimental; they are what resume relies on.
        warnings.simplefilter("ignore", category=Warning)
        return _get_storage(url, options, create)


def _get_storage(url: str, options: StorageOptions, create: bool) -> Any:
    if not isinstance(url, str) or ":" not in url:
        raise MixaqError(f"storage: {url!r} is not a storage URL (use {', '.join(s + ':' for s in _SCHEMES)}…)")
    scheme = _scheme(url)
    shown = redact_url(url)
    if scheme not in _SCHEMES:
        raise MixaqError(f"storage: unsupported URL scheme {scheme!r} in {shown!r} (use sqlite:///FILE, "
                         "postgresql://USER@HOST/DB, mysql://…, or journal:FILE)")
    if scheme == "journal":
        return _journal_storage(url, shown, create)
    engine_kwargs: dict[str, Any]
    if scheme == "sqlite":
        path_part = url.split(":///", 1)[1] if ":///" in url else ""
        if not path_part or path_part == ":memory:":
            raise MixaqError(f"storage: {shown!r} names no database file (use sqlite:///PATH/study.db)")
        parent = Path(path_part).parent
        if not parent.is_dir():
            raise MixaqError(f"storage: directory {str(parent)!r} of {shown!r} does not exist")
        if Path(path_part).is_dir():
            raise MixaqError(f"storage: {path_part!r} is a directory, not a database file")
        if not create:
            _check_sqlite_schema(Path(path_part), shown)
        engine_kwargs = {"connect_args": {"timeout": options.sqlite_timeout_s}}
    else:
        engine_kwargs = {"pool_pre_ping": True, "connect_args": _server_timeouts(scheme, options)}
    try:
        if not create and scheme != "sqlite":
            _check_server_schema(_with_available_driver(url), engine_kwargs, shown)
        storage = _rdb_storage(_with_available_driver(url), engine_kwargs, options, create)
        if scheme == "sqlite":
            _fast_sqlite(storage.engine)
        return storage
    except MixaqError:
        raise
    except ImportError as exc:
        raise MixaqError(f"storage: driver for {shown!r} is not installed ({exc.name or exc})") from None
    except Exception as exc:  # sqlalchemy/driver errors carry multi-line reports; keep the first line
        raise MixaqError(f"storage: cannot open {shown!r}: {first_line(exc)}") from None


def _journal_storage(url: str, shown: str, create: bool) -> Any:
    path = _journal_path(url)
    if not path.parent.is_dir():
        raise MixaqError(f"storage: directory {str(path.parent)!r} of {shown!r} does not exist")
    if path.is_dir():
        raise MixaqError(f"storage: {str(path)!r} is a directory, not a journal file")
    if not create and not path.is_file():
        raise MixaqError(f"storage: journal file {str(path)!r} does not exist")
    if path.is_file() and path.stat().st_size and not _looks_like_journal(path):
        # Optuna would skip the lines it cannot read and append to the file: refuse someone's notes.
        raise MixaqError(f"storage: {shown!r} is not an Optuna journal (its first line is not a journal record)")
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    # Journal storages keep no heartbeats; dead same-host workers are still reaped by pid.
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # a file that is not an Optuna journal fails while it is replayed
        raise MixaqError(f"storage: {shown!r} is not a readable Optuna journal ({first_line(exc)})") from None


def _looks_like_journal(path: Path) -> bool:
    import json

    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


# Messages of the errors two processes get when they create the schema of one fresh storage at the
# same time (SQLite, PostgreSQL, MySQL): the loser retries and finds the winner's tables.
_SCHEMA_RACE = re.compile(r"already exists|duplicate|unique constraint|integrityerror|database is locked"
                          r"|deadlock|could not serialize", re.IGNORECASE)
_SCHEMA_ATTEMPTS = 6


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], options: StorageOptions, create: bool) -> Any:
    """`RDBStorage`, retried when another process is creating the same schema right now."""
    import optuna

    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=options.heartbeat_interval_s,
                grace_period=options.grace_period_s,
                heartbeat_stale_trial_callback=RetryDeadTrial(options.max_retry),
                skip_table_creation=not create,
            )
        except Exception as exc:
            text = f"{type(exc).__name__} {exc} {exc.__cause__ or ''}"
            if attempt + 1 == _SCHEMA_ATTEMPTS or not _SCHEMA_RACE.search(text):
                raise
            time.sleep(0.05 + random.random() * 0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _server_timeouts(scheme: str, options: StorageOptions) -> dict[str, Any]:
    """Driver connect arguments so that no call waits on a silent server forever."""
    if scheme == "postgresql":
        # libpq parameters (psycopg2 and psycopg 3): connect_timeout bounds the whole handshake,
        # keepalives + tcp_user_timeout notice a dead peer, statement_timeout bounds each statement.
        return {"connect_timeout": options.connect_timeout_s,
                "keepalives": 1, "keepalives_idle": options.connect_timeout_s,
                "keepalives_interval": max(1, options.connect_timeout_s // 2), "keepalives_count": 3,
                "tcp_user_timeout": options.statement_timeout_s * 1000,
                "options": f"-c statement_timeout={options.statement_timeout_s * 1000}"}
    # MySQL drivers (PyMySQL, mysqlclient) take these three.
    return {"connect_timeout": options.connect_timeout_s, "read_timeout": options.statement_timeout_s,
            "write_timeout": options.statement_timeout_s}


def _schema_tables() -> set[str]:
    """Optuna's tables; `alembic_version` is written last, so its presence means the schema is done."""
    from optuna.storages._rdb import models

    return set(models.BaseModel.metadata.tables) | {"alembic_version"}


def _schema_verdict(names: set[str], shown: str) -> None:
    needed = _schema_tables()
    missing = sorted(needed - names)
    if len(missing) == len(needed):
        raise MixaqError(f"storage: {shown!r} holds no Optuna studies (an empty or foreign database)")
    if missing:
        raise MixaqError(f"storage: {shown!r} holds an incomplete Optuna schema (missing {', '.join(missing)}); "
                         "if a sweep is creating it right now, try again in a moment")


def _check_sqlite_schema(path: Path, shown: str) -> None:
    """Readers never create: the file must exist and already hold Optuna's tables (read-only look)."""
    if not path.is_file():
        raise MixaqError(f"storage: database file {str(path)!r} does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise MixaqError(f"storage: {shown!r} is not an SQLite database ({first_line(exc)})") from None
    _schema_verdict(names, shown)


def _check_server_schema(url: str, engine_kwargs: dict[str, Any], shown: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        names = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    _schema_verdict(names, shown)


def _fast_sqlite(engine: Any) -> None:
    """WAL journal + synchronous=NORMAL: a commit no longer waits for an fsync (~10 ms each, and a
    trial makes dozens). Still safe against a killed process (kill -9); only an OS crash can lose
    the last commits. WAL needs a local filesystem, as SQLite locking does anyway."""
    from sqlalchemy import event

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL is a property of the file, set once by its first user. Switching needs the file to
        # itself and SQLite's busy timeout does not wait for that, so processes that open a fresh
        # file together retry the switch for a bounded time instead of failing.
        deadline = time.monotonic() + 10.0
        while cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
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
