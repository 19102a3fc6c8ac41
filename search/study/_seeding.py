"""A sampler whose randomness comes from the trial number, not from the process that draws it.

Two `mixaq sweep` processes started together on one fresh study used to seed identical samplers
and propose identical trials. Trial numbers are unique within a study (Optuna assigns them under a
row lock), so deriving each trial's seed from (`--seed`, trial number) makes every process draw
differently, and makes a single-process study reproducible whatever joined it before.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from optuna.samplers import BaseSampler

__all__ = ["TrialSeededSampler", "trial_seed"]


def trial_seed(seed: int, number: int) -> int:
    """A 32-bit seed for trial `number` of a study seeded with `seed` (well mixed, deterministic)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """Delegates trial n to `build(trial_seed(seed, n))`. The wrapped samplers (NSGA-II, TPE) keep
    their population and history in the storage, so a fresh instance per trial loses nothing."""

    def __init__(self, build: Callable[[int], Any], seed: int) -> None:
        self._build, self._seed = build, int(seed)
        self._number: int | None = None
        self._sampler: Any = None

    def _for(self, trial: Any) -> Any:
        if trial.number != self._number:
            self._number, self._sampler = trial.number, self._build(trial_seed(self._seed, trial.number))
        return self._sampler

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:  # randomness is a function of the trial number by design
        pass
