"""Does window importance point at objects? Per stage, the within-image Spearman correlation between a
window's importance (the rule the model uses: SparseViT's L2 norm of the stage input's token
magnitudes, regular grid) and the share of its real tokens that objects cover.

Used by `benchmarks/bench_models.py` (segmentation masks) and `benchmarks/importance_objects.py`
(detector, ground-truth boxes).
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from mixaq.models._importance import token_magnitude, window_importance
from mixaq.models._two_branch import TwoBranchSwinBlock, convert_swin

__all__ = ["stage_inputs", "importance_object_correlation"]


def stage_inputs(model: nn.Module, forward: Callable[[nn.Module], object]) -> tuple[dict[int, torch.Tensor], dict]:
    """The input (B, H, W, C) of every Swin stage during `forward(net)`, where `net` is a float
    two-branch copy of `model` (its forward equals the model's); and each stage's window size."""
    net = convert_swin(copy.deepcopy(model)).eval()
    blocks = [b for b in net.modules() if isinstance(b, TwoBranchSwinBlock)]
    inputs: dict[int, torch.Tensor] = {}
    handles = [b.register_forward_pre_hook(lambda m, args: inputs.__setitem__(m.mixaq_stage, args[0].detach()))
               for b in blocks if b.first_in_stage]
    with torch.no_grad():
        forward(net)
    for h in handles:
        h.remove()
    windows = {b.mixaq_stage: tuple(b.window_size) for b in blocks if b.first_in_stage}
    return inputs, windows


def importance_object_correlation(model: nn.Module, forward: Callable[[nn.Module], object],
                                  cover: torch.Tensor) -> pd.DataFrame:
    """Per stage: mean over images of the Spearman correlation between window importance and object
    share. `cover` (B, 1, Hc, Wc) is each image's object mask (0/1 or fractions) over the network
    input that `forward` feeds; it is averaged onto every stage's token grid. Images whose windows
    all have the same object share (no object, or all object) are left out of that stage's mean."""
    from scipy.stats import spearmanr

    inputs, windows = stage_inputs(model, forward)
    rows = []
    for stage, x in sorted(inputs.items()):
        ws = windows[stage]
        B, H, W = x.shape[:3]
        if cover.shape[0] != B:
            raise ValueError(f"cover has {cover.shape[0]} masks for a batch of {B}")
        importance = window_importance(token_magnitude(x), ws, (0, 0))  # (B, nW)
        share_tokens = F.adaptive_avg_pool2d(cover.float(), (H, W))  # (B, 1, H, W)
        pad = (0, (-W) % ws[1], 0, (-H) % ws[0])
        covered = F.avg_pool2d(F.pad(share_tokens, pad), ws, divisor_override=1).flatten(1)  # (B, nW)
        real = F.avg_pool2d(F.pad(torch.ones_like(share_tokens), pad), ws, divisor_override=1).flatten(1)
        share = covered / real
        rho = [spearmanr(i, c).statistic for i, c in zip(importance.numpy(), share.numpy()) if c.std() > 0]
        rows.append(dict(stage=stage, grid=f"{H}x{W}", windows=importance.shape[1], images=len(rho),
                         spearman=float(np.mean(rho)) if rho else float("nan")))
    return pd.DataFrame(rows)
