"""What a sweep searches and how a point is scored: the design space, settings, objectives, accuracy and cost adapters, Pareto and hypervolume (no storage, no drawing)."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

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
    "pareto_mask": "._pareto",
    "SyntheticAccuracy": "._synthetic",
    "OBJECTIVES": "._objectives",
    "Objective": "._objectives",
    "hypervolume": "._hypervolume",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
