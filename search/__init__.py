"""Design-space search: Optuna sweeps of window precision configs, Pareto fronts, plots, `mixaq`.

Public names load on first use, so `import search` (and `search.cli`) stays free of optuna,
torch and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "AccuracyFn": "search._accuracy",
    "AccuracyResult": "search._accuracy",
    "EvaluatorFactory": "search._accuracy",
    "CostModel": "search._cost",
    "DesignPoint": "search._space",
    "SearchSpace": "search._space",
    "SweepSettings": "search._settings",
    "config_key": "search._settings",
    "StorageOptions": "search._storage",
    "get_storage": "search._storage",
    "pareto_mask": "search._pareto",
    "SweepResult": "search._sweep",
    "run_sweep": "search._sweep",
    "trial_counts": "search._sweep",
    "StudyRecord": "search._record",
    "build_record": "search._record",
    "render_plots": "search._plots",
    "write_outputs": "search._outputs",
    "SyntheticAccuracy": "search._synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'search' has no attribute {name!r}")
