"""Build timm Swin backbones from a `SwinArch` (never with pretrained weights)."""
from __future__ import annotations

from typing import Sequence

import timm
import torch.nn as nn

from mixaq.simulator import SwinArch, get_arch

__all__ = ["build_swin"]


def build_swin(
    arch: str | SwinArch,
    img_size: int | tuple[int, int] = 224,
    *,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    num_classes: int = 1000,
) -> nn.Module:
    """A timm `SwinTransformer` (or its `features_only` wrapper, NHWC maps) for `arch`.

    `strict_img_size=False` lets detection feed any input size; timm pads to window multiples.
    """
    arch = get_arch(arch)
    kwargs = dict(arch.timm_kwargs(), img_size=img_size, strict_img_size=False)
    if features_only:
        indices = tuple(range(arch.num_stages)) if out_indices is None else tuple(out_indices)
        kwargs.update(features_only=True, out_indices=indices)
    else:
        kwargs.update(num_classes=num_classes)
    return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **kwargs)
