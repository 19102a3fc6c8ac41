"""Everything torch: fake-quantized two-branch Swin, window importance, detection.

Public names load on first use (`core._util.lazy_exports`), so `import mixaq.models` and the
`mixaq` commands' `--help` never import torch or timm.
"""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "ACT_TARGETS": "._config",
    "MixConfig": "._config",
    "QuantConfig": "._config",
    "token_magnitude": "._importance",
    "window_importance": "._importance",
    "FakeQuant": "._quant",
    "WindowRecord": "._record",
    "assignment_from_record": "._record",
    "get_record": "._record",
    "reset_record": "._record",
    "build_swin": "._swin",
    "TwoBranchSwinBlock": "._two_branch",
    "calibrating": "._two_branch",
    "convert_swin": "._two_branch",
    "set_mix": "._two_branch",
    "set_quant": "._two_branch",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
