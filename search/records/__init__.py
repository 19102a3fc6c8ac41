"""What a finished study shows: plain tables from storage, analytics, comparisons, then CSV/PNG outputs and plots (read-only over the study)."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "StudyRecord": "._record",
    "build_record": "._record",
    "render_plots": "._plots",
    "write_outputs": "._outputs",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
