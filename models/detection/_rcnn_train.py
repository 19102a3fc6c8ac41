"""Training settings of the official Swin Mask R-CNN / Cascade Mask R-CNN configs that are not losses
or data: AdamW's parameter groups (`paramwise_cfg`) and stochastic depth (`drop_path_rate`).

Parameter groups: the configs give AdamW lr 1e-4, weight decay 0.05 and `custom_keys` that set
`decay_mult=0` for every parameter whose full name contains `absolute_pos_embed`,
`relative_position_bias_table` or `norm` (a substring match, as mmcv's / mmengine's constructor does).
Everything else is decayed, biases and the cascade heads' BatchNorms (named `bn`) included; that is
what mmdet does, and `tests/test_rcnn_train_fidelity.py` compares every parameter's group with
mmengine's `DefaultOptimWrapperConstructor` on the same model. The two-branch block's LN copies
(`norm1_low`, `norm2_low`) fall under `norm`.

Stochastic depth: the rate rises linearly over all blocks, block i of n drops its residual branches
with probability rate * i / (n - 1) (`torch.linspace(0, rate, n)`, as both releases build it). The
official 3x configs (those of the released checkpoints) use 0.2 for Swin-T and Swin-S and 0.3 for
Swin-B.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from mixaq.simulator import SwinArch

__all__ = ["NO_DECAY_KEYS", "rcnn_no_decay", "release_drop_path_rate", "set_drop_path"]

NO_DECAY_KEYS: tuple[str, ...] = ("absolute_pos_embed", "relative_position_bias_table", "norm")


def rcnn_no_decay(name: str) -> bool:
    """True where the configs' `paramwise_cfg` sets `decay_mult=0` for parameter `name`."""
    return any(key in name for key in NO_DECAY_KEYS)


def release_drop_path_rate(arch: SwinArch) -> float:
    """`drop_path_rate` of the official 3x config for this backbone: Swin-B (embed 128+) 0.3, else 0.2."""
    return 0.3 if arch.embed_dim >= 128 else 0.2


def set_drop_path(model: nn.Module, rate: float) -> int:
    """Give every Swin block of `model` (in order) its stochastic-depth rate; returns the block count."""
    from timm.layers import DropPath
    from timm.models.swin_transformer import SwinTransformerBlock

    if not 0.0 <= rate < 1.0:
        from mixaq.core._errors import MixaqError

        raise MixaqError(f"drop_path_rate must lie in [0, 1), got {rate}")
    blocks = [m for m in model.modules() if isinstance(m, SwinTransformerBlock)]
    for block, p in zip(blocks, torch.linspace(0, rate, len(blocks)).tolist()):
        block.drop_path1 = DropPath(p) if p > 0 else nn.Identity()
        block.drop_path2 = DropPath(p) if p > 0 else nn.Identity()
    return len(blocks)
