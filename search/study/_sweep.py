"""Run a sweep: prepare the study, fill it to `n_trials` completed trials (one or N processes), finish."""
from __future__ import annotations

import contextlib
import os
import time
import warnings
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from mixaq.core._errors import MixaqError

from mixaq.search.space._accuracy import AccuracyFactory, AccuracyFn
from mixaq.search.study._liveness import die_with_parent, reap_dead_trials
from mixaq.search.space._settings import SweepSettings
from mixaq.search.study._storage import RetryDeadTrial, StorageOptions, get_storage, open_study, redact_url
from mixaq.search.space._trials import completed_frame, trial_info
from mixaq.search.study._study import StudyHandle, make_sampler

__all__ = ["SweepResult", "quiet_optuna", "run_sweep", "trial_counts"]

_POLL_S = 0.5


@dataclass(frozen=True)
class SweepResult:
    study_name: str
    storage: str  # redacted URL
    n_complete: int
    n_pruned: int
    n_failed: int
    n_evaluated_here: int
    front: pd.DataFrame = field(repr=False)
    outputs: tuple[Path, ...] = ()
    objective_columns: tuple[str, ...] = ("ap", "speedup_bops")
    nearest_infeasible: dict[str, Any] | None = None  # search.records._analytics.nearest_infeasible when none is feasible
    hardware: dict[str, Any] | None = None  # search.records._analytics.hardware_summary (co-exploration)
    fidelity: dict[str, Any] | None = None  # search.records._analytics.fidelity_summary (--fidelity)


def trial_counts(study: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    counts = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] += 1
    return counts


@dataclass(frozen=True)
class _WorkerJob:
    """Everything a spawned worker needs, picklable (the storage travels as its URL)."""

    storage_url: str
    study_name: str
    n_trials: int
    accuracy_factory: AccuracyFactory
    storage_options: StorageOptions
    parent_pid: int


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines and experimental-feature warnings off inside, restored after
    (also usable as a decorator): a library call leaves the caller's logging and warning filters alone."""
    import optuna

    import logging

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Ctrl-C inside a trial: Optuna logs "Trial n failed" with the KeyboardInterrupt's traceback
    # before re-raising it; the user asked to stop and gets one line ("interrupted"), not a dump.
    handlers = logging.getLogger("optuna").handlers
    for h in handlers:
        h.addFilter(_drop_interrupt_traceback)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        for h in handlers:
            h.removeFilter(_drop_interrupt_traceback)
        optuna.logging.set_verbosity(before)


def _drop_interrupt_traceback(record: Any) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def _open(storage_url: str, study_name: str, settings: SweepSettings | None, options: StorageOptions) -> Any:
    import optuna

    storage = get_storage(storage_url, options)
    if settings is None:
        try:
            stored = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            raise MixaqError(f"study {study_name!r} not found in {redact_url(storage_url)!r}") from None
        from mixaq.search.space._settings import SETTINGS_ATTR

        if SETTINGS_ATTR not in stored.user_attrs:
            raise MixaqError(f"study {study_name!r} holds no mixaq settings (not created by mixaq sweep)")
        settings = SweepSettings.from_dict(stored.user_attrs[SETTINGS_ATTR])
    return open_study(storage, study_name, [o.direction for o in settings.objective_specs],
                      make_sampler(settings, settings.seed))


def _progress_text(study: Any, settings: SweepSettings) -> str:
    """The front in the sweep's own objectives: its size and the best value of each objective on it."""
    from mixaq.search.space._objectives import short_value

    df = completed_frame(study, settings)
    if df.empty:
        return "no completed trials yet"
    front = df[df["on_front"]]
    if front.empty:
        return f"{len(df)} done, none feasible yet"
    objectives = settings.objective_specs
    parts = [f"front {len(front)}"]
    for o in objectives:
        values = pd.to_numeric(front[o.column], errors="coerce")
        if values.notna().any():
            best = values.max() if o.direction == "maximize" else values.min()
            parts.append(f"best {short_value(o, float(best))}")
    return " | ".join(parts)


def _fill(handle: StudyHandle, options: StorageOptions, bar: Any = None, parent_pid: int | None = None) -> int:
    """Run trials in this process until the study holds `n_trials` completed ones. Returns how many
    trials this process ran to completion (evaluated or cached). A spawned worker whose parent died
    (kill -9 of `mixaq sweep --workers N`) stops after its current trial instead of running on."""
    from optuna.trial import TrialState

    study, ran = handle.study, 0
    retry = RetryDeadTrial(options.max_retry)
    while parent_pid is None or os.getppid() == parent_pid:
        reap_dead_trials(study, retry, orphan_after_s=options.grace_period_s)
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        if bar is not None and not bar.disable:  # the front table only for a bar that shows it
            bar.n = min(done, handle.n_trials)
            bar.set_postfix_str(_progress_text(study, handle.settings), refresh=True)
        if done >= handle.n_trials:
            return ran
        if len(trials) >= handle.n_trials:
            # The remaining slots are taken by running trials (here or elsewhere, maybe dead ones
            # awaiting their heartbeat deadline): wait rather than overshoot n_trials.
            time.sleep(_POLL_S)
            continue
        states: list[Any] = []  # this process's trial, as Optuna finished it
        try:
            study.optimize(handle.objective, n_trials=1, catch=(), gc_after_trial=False,
                           callbacks=[lambda _, trial: states.append(trial.state)])
        except ValueError as exc:
            # Another process finished this trial first: both popped the same WAITING (retried) trial,
            # which Optuna's read-then-write pop allows on SQLite under load (its measurement was
            # claimed once, `search.study._claim`), or reaped it as dead. What is stored stands.
            if not str(exc).startswith("Cannot tell a "):
                raise
        ran += states == [TrialState.COMPLETE]
    return ran


@quiet_optuna()
def _worker_main(job: _WorkerJob) -> int:
    study = _open(job.storage_url, job.study_name, None, job.storage_options)
    handle = StudyHandle.join(study, None, job.accuracy_factory, options=job.storage_options)
    handle.n_trials = job.n_trials
    return _fill(handle, job.storage_options, parent_pid=job.parent_pid)


@quiet_optuna()
def run_sweep(
    settings: SweepSettings,
    accuracy_factory: AccuracyFactory,
    storage_url: str,
    study_name: str,
    n_trials: int,
    *,
    workers: int = 1,
    out_dir: str | Path | None = None,
    progress: bool = True,
    storage_options: StorageOptions = StorageOptions(),
    pick_trial: int | None = None,
    accuracy: AccuracyFn | None = None,
    hv_ref: dict[str, Any] | None = None,
) -> SweepResult:
    """Fill study `study_name` in `storage_url` to `n_trials` COMPLETE trials and write outputs.

    Re-running the same call resumes: completed trials are kept, trials of dead workers are failed
    and retried, and only the missing trials run. Several processes (here via `workers`, or
    `mixaq sweep` on other machines) may fill one study at the same time. `accuracy` is an already
    built `accuracy_factory()` for this process (spawned workers build their own). `hv_ref`
    overrides the hypervolume reference point (`search.records._hv_reference`).
    """
    from tqdm.auto import tqdm

    if n_trials < 0:
        raise MixaqError(f"--n-trials must be >= 0, got {n_trials}")
    if workers < 1:
        raise MixaqError(f"--workers must be >= 1, got {workers}")
    owner = None
    if out_dir is not None:
        from mixaq.search.records._outputs import check_out_dir, check_out_owner, output_owner

        check_out_dir(out_dir)
        owner = output_owner(storage_url, study_name)
        check_out_owner(out_dir, owner)  # another study's outputs there: refused before any trial
    # Every process (here, spawned workers, other machines) samples trial n with a seed derived from
    # (--seed, n): processes that start together never draw the same proposals (search.study._seeding).
    study = _open(storage_url, study_name, settings, storage_options)
    handle = StudyHandle.join(study, settings, accuracy_factory, accuracy, options=storage_options)
    handle.check_costs_current()
    handle.n_trials = n_trials
    handle.ensure_fixed_baselines(progress)
    handle.check_accuracy_objectives()
    bar = tqdm(total=n_trials, desc=f"sweep {study_name}", unit="trial", disable=not progress, dynamic_ncols=True)
    ran = 0
    try:
        if workers == 1:
            ran = _fill(handle, storage_options, bar)
        else:
            ran = _run_workers(handle, accuracy_factory, storage_url, study_name, n_trials, workers,
                               storage_options, bar)
    finally:
        bar.close()
    handle.ensure_front_baselines(progress)
    outputs: tuple[Path, ...] = ()
    record = None
    counts = trial_counts(study)
    if out_dir is not None and counts["complete"]:  # nothing to tabulate or draw before the first trial
        from mixaq.search.records._outputs import write_record
        from mixaq.search.records._record import build_record

        record = build_record(study, pick_trial=pick_trial, hv_ref=hv_ref)
        outputs = tuple(write_record(record, out_dir, owner, progress=progress))
    if record is not None:
        front = record.front
    else:
        df = completed_frame(study, settings)
        front = df[df["on_front"]].sort_values(settings.x_column) if not df.empty else df
    from mixaq.search.records._analytics import fidelity_summary, hardware_summary, nearest_infeasible

    trials = record.trials if record is not None else None
    if record is not None:
        nearest = record.nearest_infeasible
    else:
        from optuna.trial import TrialState

        done = [trial_info(t) | {"number": t.number}
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        nearest = nearest_infeasible(done, settings, handle.reference_ap()) if done else None
    return SweepResult(study_name, redact_url(storage_url), counts["complete"], counts["pruned"], counts["fail"],
                       ran, front, outputs, tuple(o.column for o in settings.objective_specs),
                       nearest,
                       None if trials is None else hardware_summary(trials),
                       None if trials is None else fidelity_summary(trials, settings.fidelity))


def _run_workers(handle: StudyHandle, accuracy_factory: AccuracyFactory, storage_url: str, study_name: str,
                 n_trials: int, workers: int, options: StorageOptions, bar: Any) -> int:
    import multiprocessing as mp

    # A factory that can (EvaluatorFactory) gives worker i its own device: GPU i mod n with --device auto.
    jobs = [_WorkerJob(storage_url, study_name, n_trials,
                       accuracy_factory.for_worker(i) if hasattr(accuracy_factory, "for_worker") else accuracy_factory,
                       options, os.getpid())
            for i in range(workers)]
    # spawn: a fresh interpreter per worker (no forked torch/sqlite state). Each worker dies with
    # this process (kill -9 included) instead of running on as an orphan.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        futures = [pool.submit(_worker_main, job) for job in jobs]
        while True:
            done, pending = wait(futures, timeout=1.0, return_when=FIRST_EXCEPTION)
            counts = trial_counts(handle.study)
            bar.n = min(counts["complete"], n_trials)
            if not bar.disable:
                bar.set_postfix_str(_progress_text(handle.study, handle.settings), refresh=True)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                raise failed[0].exception()
            if not pending:
                return sum(f.result() for f in futures)
    except BaseException:
        # One worker failed or we were interrupted: stop the others now instead of letting them fill
        # the study. Their RUNNING trials are reaped (dead pid) and retried by the next run.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
