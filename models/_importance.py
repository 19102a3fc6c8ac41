"""Window importance (SparseViT's rule) and its turn into per-window branch labels.

Everything works on whole batches: (B, nW) tensors, ranks from one argsort, labels from comparisons.
"""
from __future__ import annotations

import numpy as np
import torch

from mixaq.models._windows import partition_windows
from mixaq.simulator import window_counts
from mixaq.simulator._windows import WindowGeometry
from mixaq.models._config import IMPORTANCE, RANDOM, REVERSED

__all__ = [
    "HIGH",
    "LOW",
    "PRUNED",
    "token_magnitude",
    "window_importance",
    "selection_scores",
    "window_ranks",
    "ratio_counts",
    "threshold_counts",
    "assign_labels",
    "label_counts",
]

# Branch labels of a window.
HIGH, LOW, PRUNED = 0, 1, 2

# Normalised importance divides by the image mean; guards an all-zero feature map.
_EPS = 1e-12


def token_magnitude(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) -> (B, H, W) mean |activation| per token (no gradient: selection is discrete)."""
    return x.detach().abs().mean(-1)


def window_importance(magnitude: torch.Tensor, window_size: tuple[int, int], shift_size: tuple[int, int],
                      semantics: str = "timm") -> torch.Tensor:
    """(B, H, W) token magnitudes -> (B, nW) L2 norm per window of a block's window grid.

    Partitions exactly as the block does (`partition_windows`: timm rolls by −shift then zero-pads
    bottom/right, the official backbone pads then rolls), so window w here is window w of the block.
    """
    B, H, W = magnitude.shape
    geometry = WindowGeometry((H, W), window_size, shift_size, semantics)
    windows = partition_windows(magnitude.unsqueeze(-1), geometry)  # (B*nW, wh*ww, 1)
    return windows.reshape(B, geometry.n_windows, geometry.window_tokens).norm(dim=-1)


def selection_scores(importance: torch.Tensor, strategy: str, generator: torch.Generator | None) -> torch.Tensor:
    """(B, nW) scores; windows with the lowest score are pruned first, then sent low-bit."""
    if strategy == IMPORTANCE:
        return importance
    if strategy == REVERSED:
        return -importance
    if strategy == RANDOM:
        # Drawn on the CPU generator so a seed gives the same windows on any device.
        return torch.rand(importance.shape, generator=generator).to(importance.device)
    raise ValueError(f"unknown strategy {strategy!r}")


def window_ranks(scores: torch.Tensor) -> torch.Tensor:
    """(B, nW) rank of each window by ascending score (0 = first demoted); ties by window order."""
    order = torch.argsort(scores, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def ratio_counts(n_windows: int, low_ratio: float, prune_ratio: float) -> tuple[int, int]:
    """(n_pruned, n_low) for one image via the simulator's rule, so model and cost model agree."""
    _, n_low, n_pruned = window_counts(n_windows, low_ratio, prune_ratio)
    return int(np.asarray(n_pruned)), int(np.asarray(n_low))


def threshold_counts(importance: torch.Tensor, low_threshold: float, prune_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) pruned and low counts: windows below `prune_threshold` (resp. `low_threshold`) times the
    image's mean window importance. A low threshold under the prune threshold leaves no low band."""
    normalized = importance / importance.mean(1, keepdim=True).clamp_min(_EPS)
    n_pruned = (normalized < prune_threshold).sum(1)
    n_low = ((normalized < low_threshold).sum(1) - n_pruned).clamp_min(0)
    return n_pruned, n_low


def assign_labels(ranks: torch.Tensor, n_pruned: torch.Tensor | int, n_low: torch.Tensor | int) -> torch.Tensor:
    """(B, nW) labels: the `n_pruned` lowest ranks PRUNED, the next `n_low` LOW, the rest HIGH."""
    if isinstance(n_pruned, torch.Tensor):
        n_pruned = n_pruned.reshape(-1, 1)
    if isinstance(n_low, torch.Tensor):
        n_low = n_low.reshape(-1, 1)
    labels = torch.full_like(ranks, HIGH, dtype=torch.int8)
    labels = torch.where(ranks < n_pruned + n_low, torch.tensor(LOW, dtype=torch.int8, device=ranks.device), labels)
    return torch.where(ranks < n_pruned, torch.tensor(PRUNED, dtype=torch.int8, device=ranks.device), labels)


def label_counts(labels: torch.Tensor) -> torch.Tensor:
    """(B, nW) labels -> (B, 3) windows per image that went (high, low, pruned)."""
    return torch.stack([(labels == k).sum(1) for k in (HIGH, LOW, PRUNED)], dim=1)
