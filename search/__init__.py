"""Design-space search: Optuna sweeps of window precision configs, Pareto fronts, plots, `mixaq`.

Public names load on first use, so `import search` (and `search.cli`) stays free of optuna,
torch and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "AccuracyFn": "mixaq.search._accuracy",
    "AccuracyResult": "mixaq.search._accuracy",
    "EvaluatorFactory": "mixaq.search._accuracy",
    "CostModel": "mixaq.search._cost",
    "DesignPoint": "mixaq.search._space",
    "SearchSpace": "mixaq.search._space",
    "SweepSettings": "mixaq.search._settings",
    "config_key": "mixaq.search._settings",
    "StorageOptions": "mixaq.search._storage",
    "get_storage": "mixaq.search._storage",
    "pareto_mask": "mixaq.search._pareto",
    "SweepResult": "mixaq.search._sweep",
    "run_sweep": "mixaq.search._sweep",
    "trial_counts": "mixaq.search._sweep",
    "StudyRecord": "mixaq.search._record",
    "build_record": "mixaq.search._record",
    "render_plots": "mixaq.search._plots",
    "write_outputs": "mixaq.search._outputs",
    "SyntheticAccuracy": "mixaq.search._synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mixaq.search' has no attribute {name!r}")
