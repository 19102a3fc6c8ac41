"""Everything torch: fake-quantized two-branch Swin, window importance, detection."""
from mixaq.models._config import ACT_TARGETS, MixConfig, QuantConfig
from mixaq.models._importance import token_magnitude, window_importance
from mixaq.models._quant import FakeQuant
from mixaq.models._record import WindowRecord, assignment_from_record, get_record, reset_record
from mixaq.models._swin import build_swin
from mixaq.models._two_branch import TwoBranchSwinBlock, calibrating, convert_swin, set_mix, set_quant

__all__ = [
    "ACT_TARGETS",
    "FakeQuant",
    "MixConfig",
    "QuantConfig",
    "TwoBranchSwinBlock",
    "WindowRecord",
    "assignment_from_record",
    "build_swin",
    "calibrating",
    "convert_swin",
    "get_record",
    "reset_record",
    "set_mix",
    "set_quant",
    "token_magnitude",
    "window_importance",
]
