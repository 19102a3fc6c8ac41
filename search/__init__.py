"""Design-space search: Optuna sweeps of window precision configs, Pareto fronts, plots, `mixaq`.

Public names load on first use (`core._util.lazy_exports`), so `import mixaq.search` (and
`mixaq.search.cli`) stays free of optuna, torch and matplotlib.
"""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "AccuracyFn": ".space._accuracy",
    "AccuracyResult": ".space._accuracy",
    "EvaluatorFactory": ".space._accuracy",
    "CostModel": ".space._cost",
    "DesignPoint": ".space._space",
    "SearchSpace": ".space._space",
    "SweepSettings": ".space._settings",
    "config_key": ".space._settings",
    "StorageOptions": ".study._storage",
    "get_storage": ".study._storage",
    "pareto_mask": ".space._pareto",
    "SweepResult": ".study._sweep",
    "run_sweep": ".study._sweep",
    "trial_counts": ".study._sweep",
    "StudyRecord": ".records._record",
    "build_record": ".records._record",
    "render_plots": ".records._plots",
    "write_outputs": ".records._outputs",
    "SyntheticAccuracy": ".space._synthetic",
    "OBJECTIVES": ".space._objectives",
    "Objective": ".space._objectives",
    "HardwareSpace": ".hardware._hw_space",
    "load_hw_space": ".hardware._hw_space",
    "hypervolume": ".space._hypervolume",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
