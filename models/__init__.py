"""Everything torch: fake-quantized two-branch Swin, window importance, detection."""
from models._config import ACT_TARGETS, MixConfig, QuantConfig
from models._importance import token_magnitude, window_importance
from models._quant import FakeQuant
from models._record import WindowRecord, assignment_from_record, get_record, reset_record
from models._swin import build_swin
from models._two_branch import TwoBranchSwinBlock, calibrating, convert_swin, set_mix, set_quant

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
