"""Window partition and its inverse for a `WindowGeometry` (the simulator's one window rule).

Window importance and the two-branch block both partition through here, so the windows the model
ranks, routes and records are the windows the cost model counts, in either semantics:
timm rolls then pads, the official Swin backbone pads then rolls (`mixaq.simulator._windows`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import window_partition, window_reverse

from mixaq.simulator._windows import WindowGeometry

__all__ = ["partition_windows", "reverse_windows"]


def _roll(x: torch.Tensor, geometry: WindowGeometry, sign: int) -> torch.Tensor:
    if not geometry.shifted:
        return x
    return torch.roll(x, shifts=(sign * geometry.shift_hw[0], sign * geometry.shift_hw[1]), dims=(1, 2))


def _pad(x: torch.Tensor, geometry: WindowGeometry) -> torch.Tensor:
    pad_h, pad_w = geometry.pad_hw
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h)) if pad_h or pad_w else x


def partition_windows(x: torch.Tensor, geometry: WindowGeometry) -> torch.Tensor:
    """(B, H, W, C) -> (B*nW, wh*ww, C): batch-major, then windows row-major over the grid."""
    C = x.shape[-1]
    if geometry.pad_before_roll:
        x = _roll(_pad(x, geometry), geometry, -1)
    else:
        x = _pad(_roll(x, geometry, -1), geometry)
    windows = window_partition(x, geometry.window_hw)  # (B*nW, wh, ww, C)
    return windows.view(-1, geometry.window_tokens, C)


def reverse_windows(windows: torch.Tensor, geometry: WindowGeometry) -> torch.Tensor:
    """Inverse of `partition_windows`: (B*nW, wh*ww, C) -> (B, H, W, C)."""
    (H, W), (Hp, Wp) = geometry.feature_hw, geometry.padded_hw
    C = windows.shape[-1]
    x = window_reverse(windows.view(-1, *geometry.window_hw, C), geometry.window_hw, Hp, Wp)  # (B, Hp, Wp, C)
    crop = (lambda t: t[:, :H, :W, :].contiguous()) if (Hp, Wp) != (H, W) else (lambda t: t)  # noqa: E731
    if geometry.pad_before_roll:
        return crop(_roll(x, geometry, 1))
    return _roll(crop(x), geometry, 1)
