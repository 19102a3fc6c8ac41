"""Torch-free cost model of window-level mixed-precision Swin on precision-scalable accelerators."""
from simulator._arch import SWIN_ARCHS, SwinArch, WindowAssignment, get_arch, window_counts
from simulator._errors import MixaqError

__all__ = ["MixaqError", "SWIN_ARCHS", "SwinArch", "WindowAssignment", "get_arch", "window_counts"]
