"""Who measures a configuration: atomic claims in the study's storage, kept alive by a beat.

Processes that share a study (local workers, other machines, SQLite / PostgreSQL / MySQL / journal)
must never pay twice for one mAP. Before measuring configuration `key` a process *claims* it: it
inserts the study system attribute `mixaq.claim.<key>.<generation>`. The insert is atomic (the
attribute table's unique (study, key) constraint on RDB storages, a file lock on journal ones), so
exactly one process wins; the others wait for its result to appear in the mAP cache.

A holder that dies must not block the rest forever. While it measures, a thread bumps a beat
counter (`….beat`) every heartbeat interval. A waiter takes the claim over (next generation) when
the holder is a dead process on this host, when the holder released it (its measurement raised), or
when the beat has not moved for the grace period as seen on the waiter's own monotonic clock (no
clock comparison between machines).
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any, Iterator

from mixaq.core._errors import MixaqError

from mixaq.search.study._liveness import is_alive_here

__all__ = ["CLAIM_PREFIX", "ClaimBook", "insert_if_absent"]

CLAIM_PREFIX = "mixaq.claim."
_RELEASED = -1


def _backend(storage: Any) -> Any:
    """The storage under optuna's `_CachedStorage` wrapper (RDB storages); others as they are."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


def insert_if_absent(study: Any, key: str, value: Any) -> bool:
    """Set study system attribute `key` unless it exists; True when this call created it.

    Atomic across processes and machines on RDB storages (one INSERT against the unique constraint)
    and journal storages (a file lock next to the journal); other storages (in-memory) are one process.
    """
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalStorage

    backend = _backend(study._storage)
    if isinstance(backend, RDBStorage):
        return _insert_rdb(backend, study._study_id, key, value)
    lock_path = None
    if isinstance(backend, JournalStorage):
        lock_path = getattr(backend._backend, "_file_path", None)  # JournalFileBackend's file
        if lock_path is None:  # another journal backend (e.g. Redis): no file to lock next to
            raise MixaqError("storage: measurement claims need a journal *file* backend (journal:PATH)")
    with _file_lock(None if lock_path is None else f"{lock_path}.mixaq-claims.lock"):
        if key in study._storage.get_study_system_attrs(study._study_id):
            return False
        study._storage.set_study_system_attr(study._study_id, key, value)
        return True


def _insert_rdb(storage: Any, study_id: int, key: str, value: Any) -> bool:
    from optuna.storages._rdb import models
    from sqlalchemy.exc import IntegrityError

    session = storage.scoped_session()
    try:
        session.add(models.StudySystemAttributeModel(study_id=study_id, key=key, value_json=json.dumps(value)))
        session.commit()
        return True
    except IntegrityError:  # another process inserted the same key first
        session.rollback()
        return False
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextlib.contextmanager
def _file_lock(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    import fcntl

    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class ClaimBook:
    """The claims of one study as seen by one process (`worker` = `search.study._liveness.worker_id()`)."""

    def __init__(self, study: Any, worker: str, heartbeat_s: float, grace_s: float) -> None:
        self.study, self.worker = study, worker
        self.heartbeat_s, self.grace_s = float(heartbeat_s), float(grace_s)
        # (claim attribute, beat value) -> when this process first saw that beat (monotonic clock)
        self._seen: dict[tuple[str, Any], float] = {}

    def _attrs(self) -> dict[str, Any]:
        return self.study._storage.get_study_system_attrs(self.study._study_id)

    def current(self, key: str, attrs: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]] | None:
        """(generation, holder) of the newest claim on `key`, or None when nobody claimed it."""
        attrs = self._attrs() if attrs is None else attrs
        head = f"{CLAIM_PREFIX}{key}."
        gens = [int(k[len(head):]) for k in attrs if k.startswith(head) and k[len(head):].isdigit()]
        if not gens:
            return None
        gen = max(gens)
        return gen, attrs[f"{head}{gen}"]

    def take(self, key: str) -> int | None:
        """Claim `key` (or take over a dead holder's claim); the generation held, or None if another
        live process holds it."""
        attrs = self._attrs()
        now = self.current(key, attrs)
        if now is not None and not self._stale(key, now[0], now[1], attrs):
            return None
        gen = 0 if now is None else now[0] + 1
        holder = {"worker": self.worker, "time": time.time()}
        return gen if insert_if_absent(self.study, f"{CLAIM_PREFIX}{key}.{gen}", holder) else None

    def _stale(self, key: str, gen: int, holder: dict[str, Any], attrs: dict[str, Any]) -> bool:
        name = f"{CLAIM_PREFIX}{key}.{gen}"
        beat = attrs.get(f"{name}.beat")
        if beat == _RELEASED or is_alive_here(str(holder.get("worker", ""))) is False:
            return True
        first_seen = self._seen.setdefault((name, beat), time.monotonic())
        return time.monotonic() - first_seen > self.grace_s

    @contextlib.contextmanager
    def holding(self, key: str, gen: int) -> Iterator[None]:
        """Keep claim (`key`, `gen`) alive while the body measures; release it if the body raises."""
        name = f"{CLAIM_PREFIX}{key}.{gen}.beat"
        storage, study_id = self.study._storage, self.study._study_id
        stop = threading.Event()

        def beat() -> None:
            n = 0
            while not stop.wait(self.heartbeat_s):
                n += 1
                try:
                    storage.set_study_system_attr(study_id, name, n)
                except Exception:  # a missed beat only risks a takeover after the grace period
                    pass

        thread = threading.Thread(target=beat, name="mixaq-claim-beat", daemon=True)
        thread.start()
        try:
            yield
        except BaseException:
            stop.set()
            thread.join()
            with contextlib.suppress(Exception):
                storage.set_study_system_attr(study_id, name, _RELEASED)
            raise
        stop.set()
        thread.join()
