"""A study and its storage: settings check, claims and liveness of workers, seeded sampling, the sweep driver (everything that touches Optuna's storage)."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "StorageOptions": "._storage",
    "get_storage": "._storage",
    "SweepResult": "._sweep",
    "run_sweep": "._sweep",
    "trial_counts": "._sweep",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
