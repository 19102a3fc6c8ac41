"""The hardware side of co-exploration: hardware space files and scoring every hardware point for a precision config."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "HardwareSpace": "._hw_space",
    "load_hw_space": "._hw_space",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
