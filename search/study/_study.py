"""One process's view of a study: settings check, cached measurements, baselines, the objective."""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from mixaq.simulator._cost import COST_COLUMNS
from mixaq.core._errors import MixaqError
from mixaq.core._util import json_ready
from mixaq.simulator import load_spec

from mixaq.search.space._accuracy import METRICS, AccuracyFactory, AccuracyFn, AccuracyResult
from mixaq.search.study._claim import ClaimBook
from mixaq.search.space._cost import CostModel
from mixaq.search.hardware._hardware import HardwareGrid
from mixaq.search.hardware._hw_space import HardwareSpace
from mixaq.search.study._liveness import worker_id
from mixaq.search.space._settings import (BASELINE_PREFIX, CACHE_PREFIX, CONTEXT_ATTR, SETTINGS_ATTR, SweepSettings,
                              config_key)
from mixaq.search.fidelity._fidelity import accuracy_at_fidelity, could_reach_front, fidelity_record
from mixaq.search.fidelity._screen import dominance_verdict, measured_points
from mixaq.search.space._space import DesignPoint
from mixaq.search.space._trials import (CACHED, EVALUATED, INFO_ATTR, REJECTED_HARDWARE, REJECTED_SPEEDUP, SURPLUS,
                                        completed_frame, constraints_of, is_feasible, trial_info)
from mixaq.search.study._seeding import TrialSeededSampler
from mixaq.search.study._storage import WORKER_ATTR, StorageOptions
from mixaq.models._config import RANDOM, REVERSED

__all__ = ["StudyHandle", "constraints_of", "is_feasible", "make_sampler", "trial_info", "completed_frame", "INFO_ATTR"]

# The screen may reject this many proposals in a row before one is evaluated regardless, so a
# converged front cannot starve the study of completed trials.
_MAX_SCREENED_IN_ROW = 25
_MAX_INFEASIBLE_IN_ROW = 500
# How often a process waiting for another one's measurement of the same configuration looks again.
_CLAIM_POLL_S = 0.25


def make_sampler(settings: SweepSettings, seed: int) -> Any:
    """The study's sampler; trial n draws with a seed derived from (`seed`, n). Trial numbers are
    unique in a study, so processes that join it together never draw the same proposals, and a fresh
    single-process study is reproducible."""
    return TrialSeededSampler(lambda trial_seed: _base_sampler(settings, trial_seed), seed)


def _base_sampler(settings: SweepSettings, seed: int) -> Any:
    import optuna

    use_constraints = settings.max_map_drop is not None or settings.min_speedup is not None
    cf = constraints_of if use_constraints else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # constraints_func is flagged experimental
        if settings.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constraints_func=cf, multivariate=True,
                                              n_startup_trials=settings.population_size)
        return optuna.samplers.NSGAIISampler(population_size=settings.population_size, seed=seed,
                                             constraints_func=cf)


@dataclass
class StudyHandle:
    """A joined study plus what this process needs to measure design points in it."""

    study: Any
    settings: SweepSettings
    cost: CostModel
    accuracy_factory: AccuracyFactory
    n_trials: int = 0
    _accuracy: AccuracyFn | None = None
    hardware: HardwareGrid | None = None  # co-exploration: the hardware space's points (None: one spec)
    _reference_images: int = 0  # --fidelity: images of uniform-high subset evaluations not yet charged
    _screened_in_row: int = 0
    _infeasible_in_row: int = 0
    worker: str = field(default_factory=worker_id)
    options: StorageOptions = field(default_factory=StorageOptions)
    _claims: ClaimBook | None = None

    # -- setup ----------------------------------------------------------------------------------
    @classmethod
    def join(cls, study: Any, settings: SweepSettings | None, accuracy_factory: AccuracyFactory,
             accuracy: AccuracyFn | None = None, options: StorageOptions | None = None) -> "StudyHandle":
        """Record settings and model context on first use; otherwise check that they match.

        Everything that can be wrong with new settings (spec, bits, an unreachable --min-speedup) is
        checked before they are stored, so a corrected command can still create the study.
        """
        stored = study.user_attrs.get(SETTINGS_ATTR)
        if settings is None:
            if stored is None:
                raise MixaqError(f"study {study.study_name!r} holds no mixaq settings (not created by mixaq sweep)")
            settings = SweepSettings.from_dict(stored)
        elif stored is not None:
            diff = settings.differences(SweepSettings.from_dict(stored))
            if diff:
                raise MixaqError(f"study {study.study_name!r} was created with different settings "
                                 f"({', '.join(diff)}); use another --study name or the same options")
        accuracy = accuracy or accuracy_factory()
        space = settings.space
        hardware = None
        if settings.hw_space is not None:
            if space.mode != "ratio":
                raise MixaqError("--hw-space needs --mode ratio (threshold points know their windows only after "
                                 "the model ran)")
            hw_space = HardwareSpace.from_dict(settings.hw_space)
            hardware = HardwareGrid(hw_space, settings.seed, accuracy.arch, tuple(accuracy.image_hw),
                                    space.high_act_bits, space.weight_bits)
            cost = CostModel(load_spec(hw_space.base), accuracy.arch, tuple(accuracy.image_hw), space.high_act_bits,
                             space.weight_bits)
        else:
            cost = CostModel.load(settings.spec, accuracy.arch, accuracy.image_hw, space.high_act_bits,
                                  space.weight_bits)
            _check_bits_supported(settings, cost)
        if space.num_pairs != accuracy.arch.num_pairs:
            raise MixaqError(f"search space has {space.num_pairs} block pairs, the model has {accuracy.arch.num_pairs}")
        handle = cls(study, settings, cost, accuracy_factory, _accuracy=accuracy, options=options or StorageOptions(),
                     hardware=hardware)
        if stored is None:
            handle.check_reachable()
        context = {"arch": {k: (list(v) if isinstance(v, tuple) else v) for k, v in accuracy.arch.timm_kwargs().items()},
                   "image_hw": list(accuracy.image_hw), "fingerprint": accuracy.fingerprint(), "spec": settings.spec}
        context = json_ready(context)
        have = study.user_attrs.get(CONTEXT_ATTR)
        if have is not None and have != context:
            raise MixaqError(f"study {study.study_name!r} was measured on another model/data "
                             f"({', '.join(_differences(have, context))} differ); use another --study name, "
                             "or the checkpoint and data the study was measured on")
        if stored is None:
            study.set_user_attr(SETTINGS_ATTR, settings.to_dict())
        if have is None:
            study.set_user_attr(CONTEXT_ATTR, context)
            for key, value in identity_attrs(settings, context).items():
                study.set_user_attr(key, value)
        if study.metric_names is None:  # Optuna's dashboard and visualization show these, not values_0
            study.set_metric_names([o.name for o in settings.objective_specs])
        return handle

    @property
    def accuracy(self) -> AccuracyFn:
        if self._accuracy is None:
            self._accuracy = self.accuracy_factory()
        return self._accuracy

    def check_reachable(self, n_samples: int = 4096) -> float:
        """Largest simulated speedup over a batch of random ratio-mode points and the space's corner;
        an unreachable --min-speedup is reported before any mAP is paid for."""
        space = self.settings.space
        if space.mode != "ratio" or self.hardware is not None:
            return math.nan  # a hardware space checks --min-speedup per proposal (outcome rejected_min_speedup)
        arr = space.sample_ratios(np.random.default_rng(self.settings.seed), n_samples)
        corner = space.most_aggressive()
        for k, v in (("high_act_bits", corner.high_act_bits), ("low_act_bits", corner.low_act_bits),
                     ("weight_bits", corner.weight_bits)):
            arr[k] = np.append(arr[k], v)
        arr["low_ratios"] = np.vstack([arr["low_ratios"], corner.low_ratios])
        arr["prune_ratios"] = np.vstack([arr["prune_ratios"], corner.prune_ratios])
        scored = self.cost.score_arrays(arr["high_act_bits"], arr["low_act_bits"], arr["weight_bits"],
                                        arr["low_ratios"], arr["prune_ratios"])
        best = float(scored[f"speedup_{self.settings.cost}"].max())
        if self.settings.min_speedup is not None and best < self.settings.min_speedup:
            raise MixaqError(f"--min-speedup {self.settings.min_speedup:g} is unreachable: the largest simulated "
                             f"{self.settings.cost} speedup in this search space is {best:.3f}x")
        return best

    # -- measurements (cached in the study storage) ---------------------------------------------
    def key_and_costs(self, point: DesignPoint, assignment: Any = None) -> tuple[str, dict[str, Any]]:
        """(configuration key, simulated costs and window fractions) of `point` (`assignment`: the windows a
        threshold point recorded)."""
        if point.mode == "ratio" and assignment is None:
            assignment = self.cost.assignment(point.high_act_bits, point.low_act_bits, point.weight_bits,
                                              point.low_ratios, point.prune_ratios)
        costs: dict[str, Any] = {}
        if assignment is not None and self.hardware is not None and not self._base_runs(assignment):
            # Co-exploration: the base spec need not run every searched width; the grid's points cost it.
            costs = {"low_fraction": [round(float(v), 6) for v in assignment.low_fraction],
                     "pruned_fraction": [round(float(v), 6) for v in assignment.pruned_fraction]}
        elif assignment is not None:
            row = self.cost.score_assignments([assignment]).iloc[0]
            costs = {k: json_ready(row.get(k, math.nan)) for k in
                     (*COST_COLUMNS.values(), "macs", *(f"speedup_{k}" for k in COST_COLUMNS))}
            # Objective columns beyond the standard ones (dram_bytes, area_mm2) only when optimized,
            # so a default study's trial records (and trials.csv) keep their columns.
            for o in self.settings.objective_specs:
                if o.source == "cost" and o.column not in costs:
                    costs[o.column] = json_ready(row.get(o.column, math.nan))
                elif o.source == "hardware":
                    costs[o.column] = self.cost.spec.area_mm2
            costs["low_fraction"] = [round(float(v), 6) for v in assignment.low_fraction]
            costs["pruned_fraction"] = [round(float(v), 6) for v in assignment.pruned_fraction]
        if point.mode == "ratio":
            return config_key(point, assignment.low_fraction, assignment.pruned_fraction), costs
        return config_key(point), costs

    def _base_runs(self, a: Any) -> bool:
        try:
            for bits in (a.high_act_bits, a.weight_bits, *((a.low_act_bits,) if any(a.low_fraction) else ())):
                self.cost.spec.check_bits("bits", bits)
        except MixaqError:
            return False
        return True

    def charge_reference_images(self, n: int) -> None:
        self._reference_images += n

    def take_reference_images(self) -> int:
        """Images of uniform-high subset evaluations (--fidelity) not yet charged to a trial."""
        n, self._reference_images = self._reference_images, 0
        return n

    def cached(self, key: str) -> AccuracyResult | None:
        hit = self.study.user_attrs.get(CACHE_PREFIX + key)
        return None if hit is None else AccuracyResult.from_dict(hit)

    @property
    def claims(self) -> ClaimBook:
        if self._claims is None:
            self._claims = ClaimBook(self.study, self.worker, self.options.heartbeat_interval_s,
                                     self.options.grace_period_s)
        return self._claims

    def measured(self, key: str, point: DesignPoint, *, wait: bool = True, n_images: int | None = None,
                 bootstrap: int = 0) -> tuple[AccuracyResult | None, bool]:
        """(result, cache hit) of configuration `key`, measured at most once across every process.

        The cache is checked at the moment of measuring, and the measurement is claimed atomically in
        the storage (`search.study._claim`): a process that loses the claim waits for the holder's result
        (or, with `wait=False`, returns (None, False) at once). `n_images` / `bootstrap`: a
        lower-fidelity measurement (--fidelity), cached under its own key.
        """
        subset = {**({} if n_images is None else {"n_images": n_images}),
                  **({"bootstrap": bootstrap} if bootstrap and (n_images is not None or self._takes_bootstrap) else {})}
        while True:
            result = self.cached(key)
            if result is not None:
                return result, True
            gen = self.claims.take(key)
            if gen is not None:
                result = self.cached(key)  # the previous holder may have finished just now
                if result is not None:
                    return result, True
                with self.claims.holding(key, gen):
                    result = self.accuracy(point, **subset)
                    self.study.set_user_attr(CACHE_PREFIX + key, json_ready(result.to_dict()))
                return result, False
            if not wait:
                return None, False
            time.sleep(_CLAIM_POLL_S)

    @property
    def _takes_bootstrap(self) -> bool:
        """Whether this AccuracyFn takes `bootstrap` (a full-set interval); a plain `point -> result`
        one written before intervals is still served, without error bars."""
        import inspect

        try:
            params = inspect.signature(self.accuracy).parameters.values()
        except (TypeError, ValueError):
            return False
        return any(p.name == "bootstrap" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)

    def measure(self, point: DesignPoint, promote: Callable[[AccuracyResult], bool] | None = None, *,
                wait: bool = True, key_costs: tuple[str, dict[str, Any]] | None = None) -> tuple[dict[str, Any] | None, bool]:
        """Accuracy (cached per configuration across resumes and workers) and simulated cost of a point.
        With `wait=False`, (None, False) when another process is measuring it right now.

        With --fidelity and a `promote` rule, the point is measured on the smallest image subset
        first and on each larger one only while `promote(result)` says it could still matter.
        `key_costs`: the point's `key_and_costs`, when the caller computed them already.
        """
        key, costs = key_costs if key_costs is not None else self.key_and_costs(point)
        got = accuracy_at_fidelity(self, key, point, promote, wait)
        if got is None:
            return None, False
        result, hit, spent, lower, level = got
        if point.mode == "threshold" and result.assignment is not None:
            # Threshold points only know their windows after running the model: cost what it recorded.
            _, costs = self.key_and_costs(point, result.assignment)
        record = {m: json_ready(getattr(result, m)) for m in METRICS}
        for o in self.settings.objective_specs:
            if o.source == "accuracy" and o.column not in record:
                record[o.column] = json_ready(getattr(result, o.column, math.nan))
        record.update(n_images=result.n_images, eval_seconds=json_ready(result.seconds), config_key=key, **costs)
        lo, hi = (math.nan if v is None else float(v) for v in (result.ap_ci_low, result.ap_ci_high))  # None: cached NaN
        if math.isfinite(lo) and math.isfinite(hi):
            # 95 % bootstrap interval over the evaluated images: the error bars of the figures.
            record.update(ap_ci_low=result.ap_ci_low, ap_ci_high=result.ap_ci_high)
        if self.settings.fidelity:
            fidelity_record(self, record, result, level, spent, lower)
        if result.assignment is not None and point.mode == "ratio":
            # The model's recorded windows must match the simulator's count rule (shared window_counts).
            recorded = np.asarray(result.assignment.low_fraction) + np.asarray(result.assignment.pruned_fraction)
            predicted = np.asarray(costs["low_fraction"]) + np.asarray(costs["pruned_fraction"])
            record["assignment_matches"] = bool(np.allclose(recorded, predicted, atol=1e-6))
        return record, hit

    # -- baselines ------------------------------------------------------------------------------
    def baseline_points(self) -> dict[str, DesignPoint]:
        s = self.settings.space
        zeros = (0.0,) * s.num_pairs
        return {
            "float": DesignPoint(None, None, None, zeros, zeros),
            "uniform_high": DesignPoint(s.high_act_bits, s.high_act_bits, s.weight_bits, zeros, zeros),
            "uniform_low": DesignPoint(s.low_act_bits, s.low_act_bits, s.weight_bits, zeros, zeros),
        }

    def ensure_baseline(self, name: str, point: DesignPoint, of_trial: int | None = None, *,
                        wait: bool = True) -> dict[str, Any] | None:
        """The stored baseline `name`, measured first if needed (None: `wait=False` and another
        process is measuring it)."""
        have = self.study.user_attrs.get(BASELINE_PREFIX + name)
        if have is not None:
            return have
        record, _ = self.measure(point, wait=wait)
        if record is None:
            return None
        entry = json_ready({"name": name, "point": point.to_dict(), "label": point.describe(),
                            "of_trial": of_trial, **record})
        self.study.set_user_attr(BASELINE_PREFIX + name, entry)
        return entry

    def ensure_baselines(self, points: dict[str, tuple[DesignPoint, int | None]],
                         progress: bool = False) -> dict[str, dict[str, Any]]:
        """Every named baseline; first those no other process is measuring, then wait for the rest
        (processes starting together share the work instead of queueing behind one another).
        `progress`: a bar over the baselines still to measure (each is a full mAP evaluation)."""
        from mixaq.core._progress import phase

        out: dict[str, dict[str, Any]] = {}
        todo = [n for n in points if BASELINE_PREFIX + n not in self.study.user_attrs]
        with phase("baselines", total=len(todo), unit="baseline", enabled=progress and bool(todo)) as bar:
            for wait in (False, True):
                for name, (point, of_trial) in points.items():
                    if name not in out:
                        bar.set_postfix_str(name, refresh=True)
                        entry = self.ensure_baseline(name, point, of_trial, wait=wait)
                        if entry is not None:
                            out[name] = entry
                            if name in todo:
                                bar.update(1)
        return out

    def check_costs_current(self) -> None:
        """A resumed study's trials carry the costs of the cost model that scored them: new trials
        scored by another one (a mixaq upgrade that changed the simulator) would mix two models'
        speedups on one front, silently. The stored uniform-high baseline, re-costed now, tells."""
        stored = self.study.user_attrs.get(BASELINE_PREFIX + "uniform_high")
        if stored is None:
            return
        _, now = self.key_and_costs(self.baseline_points()["uniform_high"])
        for column in COST_COLUMNS.values():
            then, here = stored.get(column), now.get(column)
            if then is None or here is None or not (math.isfinite(then) and math.isfinite(here)):
                continue  # not costed here (co-exploration: per hardware point), or not at all
            if not math.isclose(then, here, rel_tol=1e-9):
                raise MixaqError(f"study {self.study.study_name!r} was costed by another cost model (uniform-high "
                                 f"{column} {then:.6g} when stored, {here:.6g} now): new trials would mix two "
                                 "models' speedups; use another --study name, or the mixaq version that created it")

    def ensure_fixed_baselines(self, progress: bool = False) -> dict[str, dict[str, Any]]:
        return self.ensure_baselines({name: (p, None) for name, p in self.baseline_points().items()}, progress)

    def reference_ap(self) -> float:
        """The uniform-high baseline's accuracy (`settings.accuracy_column`): the --max-map-drop reference."""
        ref = self.study.user_attrs.get(BASELINE_PREFIX + "uniform_high")
        if ref is None:
            ref = self.ensure_baseline("uniform_high", self.baseline_points()["uniform_high"])
        return float(ref[self.settings.accuracy_column])

    def check_accuracy_objectives(self) -> None:
        """Every accuracy objective must be measurable on this model (e.g. mask AP needs masks):
        checked on the uniform-high baseline, before the first trial."""
        ref = self.study.user_attrs.get(BASELINE_PREFIX + "uniform_high") or {}
        for o in self.settings.objective_specs:
            value = ref.get(o.column)
            if o.source == "accuracy" and (value is None or not math.isfinite(float(value))):
                raise MixaqError(f"objective {o.name} reads column {o.column!r}, which this model does not "
                                 f"measure ({'no masks' if o.column == 'ap_segm' else 'missing'}); "
                                 "choose another --objectives")

    def ensure_front_baselines(self, progress: bool = False) -> list[str]:
        """Random-window, reversed-window and pruning-only at the ratios of up to `baseline_points`
        front points (spread along the front): what importance-based selection buys."""
        k = self.settings.baseline_points
        trials = completed_frame(self.study, self.settings)
        if k == 0 or trials.empty or self.settings.space.mode != "ratio":
            return []
        front = trials[trials["on_front"] & (trials["speedup"] > 1.0 + 1e-9)].sort_values("speedup")
        if front.empty:
            return []
        picks = front.iloc[np.unique(np.linspace(0, len(front) - 1, min(k, len(front))).round().astype(int))]
        todo: dict[str, tuple[DesignPoint, int | None]] = {}
        for _, row in picks.iterrows():
            point = DesignPoint.from_dict(row["point"])
            n = int(row["number"])
            variants = {f"random@{n}": DesignPoint(**{**point.to_dict(), "strategy": RANDOM}),
                        f"reversed@{n}": DesignPoint(**{**point.to_dict(), "strategy": REVERSED})}
            demoted = tuple(min(lo + pr, 1.0) for lo, pr in zip(point.low_ratios, point.prune_ratios))
            variants[f"prune_only@{n}"] = DesignPoint(point.high_act_bits, point.high_act_bits, point.weight_bits,
                                                      (0.0,) * len(demoted), demoted, strategy=point.strategy)
            for name, p in variants.items():
                if p.strategy == point.strategy and name.startswith((RANDOM, REVERSED)):
                    continue
                todo[name] = (p, n)
        self.ensure_baselines(todo, progress)
        return list(todo)

    # -- the Optuna objective -------------------------------------------------------------------
    def objective(self, trial: Any) -> tuple[float, ...]:
        from optuna.trial import TrialState

        trial.set_user_attr(WORKER_ATTR, self.worker)
        # Reservation: with several workers, only the first n_trials live trials may run.
        ahead = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                 if t.number < trial.number]
        if len(ahead) >= self.n_trials:
            return self._reject(trial, {}, SURPLUS)
        point = self.settings.space.suggest(trial)
        # Everything about the trial goes into one attribute: one storage write instead of dozens.
        info: dict[str, Any] = {"point": point.to_dict(), "label": point.describe()}
        kind = self.settings.cost
        key, costs = key_costs = self.key_and_costs(point)
        info.update(costs)
        candidates = None
        if self.hardware is not None:
            hw, why = self.hardware.proposal_points(point, costs, self.settings)
            if hw is None:
                return self._reject(trial, {**info, "reject_reason": why},
                                    REJECTED_SPEEDUP if why == "min_speedup" else REJECTED_HARDWARE)
            rep_record, candidates = hw
            info.update(rep_record)
            costs = {**costs, **rep_record}
        if point.mode == "ratio":
            speed = costs[f"speedup_{kind}"]
            if self.settings.min_speedup is not None and speed < self.settings.min_speedup:
                return self._reject(trial, info, REJECTED_SPEEDUP)
            self._infeasible_in_row = 0
            if self.cached(key) is None and self.settings.screen and self._screened_in_row < _MAX_SCREENED_IN_ROW:
                verdict = self.screen(point, costs, speed, candidates)
                if verdict is not None:
                    self._screened_in_row += 1
                    return self._reject(trial, info, verdict)
        self._screened_in_row = 0
        promote = None
        if self.settings.fidelity:
            values = candidates if candidates is not None else \
                {o.column: costs[o.column] for o in self.settings.objective_specs if o.source != "accuracy"}
            promote = lambda result: could_reach_front(self, result, values)  # noqa: E731
        record, hit = self.measure(point, promote, key_costs=key_costs)
        info.update(record)
        if self.hardware is not None:
            info.update(rep_record)  # the representative hardware point's costs, not the base spec's
        info["outcome"] = CACHED if hit else EVALUATED
        acc, speed = float(record[self.settings.accuracy_column]), float(info[f"speedup_{kind}"])
        info["constraints"] = self._constraints(acc, speed)
        trial.set_user_attr(INFO_ATTR, json_ready(info))
        return tuple(float(info[o.column]) for o in self.settings.objective_specs)

    def _constraints(self, ap: float, speed: float) -> list[float]:
        s = self.settings
        c_map = (self.reference_ap() - s.max_map_drop) - ap if s.max_map_drop is not None else -1.0
        c_speed = s.min_speedup - speed if s.min_speedup is not None else -1.0
        return [float(c_map), float(c_speed)]

    def _reject(self, trial: Any, info: dict[str, Any], outcome: str) -> Any:
        import optuna

        if outcome == REJECTED_SPEEDUP:
            self._infeasible_in_row += 1
            if self._infeasible_in_row > _MAX_INFEASIBLE_IN_ROW:
                raise MixaqError(f"{_MAX_INFEASIBLE_IN_ROW} proposals in a row missed --min-speedup "
                                 f"{self.settings.min_speedup:g}; loosen it or widen the search space")
        trial.set_user_attr(INFO_ATTR, json_ready({**info, "outcome": outcome}))
        raise optuna.TrialPruned(outcome)

    def screen(self, point: DesignPoint, costs: dict[str, Any], speed: float,
               candidates: dict[str, np.ndarray] | None = None) -> str | None:
        """The dominance screen of `search.fidelity._screen` against everything measured so far (with a
        hardware space: against every kept hardware point of every measured configuration, the
        proposal being dominated only if each of its own kept points is)."""
        s = self.settings
        floor = None if s.max_map_drop is None else self.reference_ap() - s.max_map_drop
        values = candidates if candidates is not None else \
            {o.column: costs[o.column] for o in s.objective_specs if o.source != "accuracy"}
        return dominance_verdict(measured_points(self.study, s.objective_specs, s.accuracy_column), point,
                                 np.asarray(costs["low_fraction"]), np.asarray(costs["pruned_fraction"]),
                                 values, s.objective_specs, s.screen_tolerance, floor)


IDENTITY_PREFIX = "mixaq.identity."


def identity_attrs(settings: SweepSettings, context: dict[str, Any]) -> dict[str, str]:
    """What a study is about, as flat strings other tools (optuna-dashboard) show: the objectives,
    the hardware, the model and the data (by content, as the fingerprint checks them)."""
    from mixaq.search.records._recost import arch_label, image_label

    fp = context.get("fingerprint") or {}
    space = settings.hw_space
    model = fp.get("checkpoint_sha1") or fp.get("synthetic") or "?"
    data = fp.get("data_sha1") or (f"synthetic seed {fp['seed']}" if "seed" in fp else "?")
    images = ", ".join(f"{fp[k]} {w}" for k, w in (("eval_images", "evaluation images"),
                                                  ("calib_images", "calibration images")) if fp.get(k))
    return {
        IDENTITY_PREFIX + "objectives": ", ".join(f"{o.name} ({o.direction[:3]})" for o in settings.objective_specs),
        IDENTITY_PREFIX + "spec": f"hardware space {space['name']}" if space else str(settings.spec),
        IDENTITY_PREFIX + "model": f"{model} (arch {arch_label(context)}, input {image_label(context)}"
                                   f"{', observer ' + fp['observer'] if fp.get('observer') else ''})",
        IDENTITY_PREFIX + "data": data + (f" ({images})" if images else ""),
    }


def _differences(stored: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """Which context entries differ, naming the fingerprint's own keys (e.g. `data_sha1`)."""
    diff = []
    for key in sorted(set(stored) | set(here)):
        a, b = stored.get(key), here.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff += [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diff.append(key)
    return diff


def _check_bits_supported(settings: SweepSettings, cost: CostModel) -> None:
    s = settings.space
    bits = {"--low-act-bits": s.low_act_bits, "--high-act-bits": s.high_act_bits, "--weight-bits": s.weight_bits}
    if s.search_act_bits:
        bits["--act-bit-choices"] = s.act_bit_choices
    if s.search_weight_bits:
        bits["--weight-bit-choices"] = s.weight_bit_choices
    for name, value in bits.items():
        cost.spec.check_bits(name, value)

