"""Everything torch: fake-quantized two-branch Swin, window importance, detection."""
from models._swin import build_swin

__all__ = ["build_swin"]
