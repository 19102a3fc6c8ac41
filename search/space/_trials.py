"""The trial-record vocabulary: what mixaq stores about a trial, its outcome, feasibility, front flags
and the `speedup` alias column. It sits below the study (search.study), the screen and fidelity
(search.fidelity) and the records (search.records), which all read trials through it."""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from mixaq.search.space._objectives import oriented
from mixaq.search.space._pareto import first_of_duplicates, pareto_mask
from mixaq.search.space._settings import SETTINGS_ATTR, SweepSettings

__all__ = ["INFO_ATTR", "EVALUATED", "CACHED", "REJECTED_SPEEDUP", "REJECTED_HARDWARE", "REJECTED_DOMINATED",
           "REJECTED_MAP", "SURPLUS", "SPEEDUP_ALIAS", "trial_info", "constraints_of", "is_feasible", "speedup_of",
           "on_front_eligible", "completed_frame"]

INFO_ATTR = "info"

# Trial outcomes (info["outcome"]); only evaluated/cached trials are COMPLETE.
EVALUATED, CACHED = "evaluated", "cached"
REJECTED_SPEEDUP = "rejected_min_speedup"
REJECTED_HARDWARE = "rejected_hardware"  # no hardware point runs it within the budgets
REJECTED_DOMINATED, REJECTED_MAP = "rejected_dominated", "rejected_map_bound"  # the screen (search.fidelity._screen)
SURPLUS = "surplus"

# The column every table and plot calls `speedup`: the speedup of the study's cost kind.
SPEEDUP_ALIAS = "speedup"

# A trial that never measured (no constraints recorded) counts as feasible.
_UNCONSTRAINED = (0.0, 0.0)


def trial_info(trial: Any) -> dict[str, Any]:
    """What mixaq recorded about a trial (one user attribute) plus the other user attributes."""
    attrs = trial.user_attrs
    return {**{k: v for k, v in attrs.items() if k != INFO_ATTR}, **attrs.get(INFO_ATTR, {})}


def constraints_of(trial: Any) -> list[float]:
    """Optuna constraints_func: <= 0 is feasible; trials that never measured count as feasible."""
    return list(trial_info(trial).get("constraints", _UNCONSTRAINED))


def is_feasible(info: Mapping[str, Any]) -> bool:
    """The feasibility rule of a measured trial (its `trial_info`): every constraint <= 0."""
    return all(c <= 0 for c in info.get("constraints", _UNCONSTRAINED))


def speedup_of(record: Mapping[str, Any], kind: str, default: Any = math.nan) -> Any:
    """The `speedup` alias of a trial or baseline record: its `speedup_<kind>` (kind: the study's cost)."""
    return record.get(f"speedup_{kind}", default)


def on_front_eligible(trials: pd.DataFrame) -> np.ndarray:
    """Trials that may be on a front: all but those --fidelity stopped below the full image set
    (their mAP is an estimate; they were judged dominated)."""
    if "fidelity_top" not in trials:
        return np.ones(len(trials), dtype=bool)
    return trials["fidelity_top"].map(lambda v: True if v is None or v != v else bool(v)).to_numpy(bool)


def completed_frame(study: Any, settings: SweepSettings | None = None) -> pd.DataFrame:
    """COMPLETE trials as a table with `speedup` (the study's cost kind), feasibility and front flag.
    `settings`: the study's, when the caller already holds them (else read from the study)."""
    from optuna.trial import TrialState

    if settings is None:
        settings = SweepSettings.from_dict(study.user_attrs[SETTINGS_ATTR])
    objectives = settings.objective_specs
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        info = trial_info(t)
        row = {"number": t.number, **info, **{o.column: v for o, v in zip(objectives, t.values)}}
        row[SPEEDUP_ALIAS] = speedup_of(info, settings.cost)
        row["feasible"] = is_feasible(info)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    values = oriented(df[[o.column for o in objectives]].to_numpy(float), objectives)
    mask = pareto_mask(values, df["feasible"].to_numpy(bool) & on_front_eligible(df))
    df["on_front"] = first_of_duplicates(mask, df["config_key"].to_numpy(object))
    df.attrs["cost"] = settings.cost
    return df
