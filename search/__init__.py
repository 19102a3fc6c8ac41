"""Design-space search: Optuna sweeps of window precision configs, Pareto fronts, plots, `mixaq`.

Public names load on first use (`simulator._util.lazy_exports`), so `import mixaq.search` (and
`mixaq.search.cli`) stays free of optuna, torch and matplotlib.
"""
from __future__ import annotations

from mixaq.simulator._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "AccuracyFn": "._accuracy",
    "AccuracyResult": "._accuracy",
    "EvaluatorFactory": "._accuracy",
    "CostModel": "._cost",
    "DesignPoint": "._space",
    "SearchSpace": "._space",
    "SweepSettings": "._settings",
    "config_key": "._settings",
    "StorageOptions": "._storage",
    "get_storage": "._storage",
    "pareto_mask": "._pareto",
    "SweepResult": "._sweep",
    "run_sweep": "._sweep",
    "trial_counts": "._sweep",
    "StudyRecord": "._record",
    "build_record": "._record",
    "render_plots": "._plots",
    "write_outputs": "._outputs",
    "SyntheticAccuracy": "._synthetic",
    "OBJECTIVES": "._objectives",
    "Objective": "._objectives",
    "HardwareSpace": "._hw_space",
    "load_hw_space": "._hw_space",
    "hypervolume": "._hypervolume",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
