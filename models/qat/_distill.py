"""Optional SAQA distillation: the low-bit branch imitates the high-bit branch on important windows.

While a `DistillTap` is active, every time a converted block runs its high branch on a set of
windows (the important ones, by the current mix), it also runs the low branch on the same windows
and records the relative MSE between the two outputs, the high output detached as the target. The
low branch thus learns, on the windows where the high branch's output is known, to reproduce it.
"""
from __future__ import annotations

import types

import torch
import torch.nn as nn

from mixaq.models._two_branch import TwoBranchSwinBlock, converted_blocks

__all__ = ["DistillTap"]

_EPS = 1e-12


class DistillTap:
    """Context manager; `pop_loss()` returns the mean recorded loss since the last pop (0 if none)."""

    def __init__(self, model: nn.Module) -> None:
        self.blocks = [b for _, b in converted_blocks(model)]
        self._parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # (sum of squared errors, sum of squared targets)

    def _tapped(self, block: TwoBranchSwinBlock, branch: str, xw: torch.Tensor, bias: torch.Tensor, extras: tuple) -> torch.Tensor:
        out = TwoBranchSwinBlock._branch(block, branch, xw, bias, extras)
        if branch == "high" and block.training and torch.is_grad_enabled():
            low = TwoBranchSwinBlock._branch(block, "low", xw, bias, extras)  # (n, N, C)
            target = out.detach()
            self._parts.append(((low - target).pow(2).sum(), target.pow(2).sum()))
        return out

    def __enter__(self) -> "DistillTap":
        tap = self

        def branch(block, name, xw, bias, extras):  # noqa: ANN001, ANN202 (the block method's signature)
            return tap._tapped(block, name, xw, bias, extras)

        for block in self.blocks:
            block._branch = types.MethodType(branch, block)  # instance attribute shadows the method
        return self

    def __exit__(self, *exc: object) -> None:
        for block in self.blocks:
            block.__dict__.pop("_branch", None)
        self._parts = []

    def pop_loss(self, dist=None, device=None) -> torch.Tensor:  # noqa: ANN001 (DistContext, torch.device)
        """The mean over tapped blocks of the relative MSE (sum of squared errors / sum of squared
        targets) since the last pop. `dist` (a distributed run): each block's denominator is the
        global batch's (summed over ranks) and the result is scaled by the world size, so DDP's
        average over ranks is the global batch's loss exactly; when ranks tapped different numbers
        of blocks, each rank's own loss is used (then averaged over ranks)."""
        parts, self._parts = self._parts, []
        if dist is not None and dist.distributed:
            n = float(len(parts))
            total, squares = dist.sum_values([n, n * n], device)
            if total * total == dist.world * squares and parts:  # every rank tapped the same blocks
                denominators = dist.sum_values([float(t.detach()) for _, t in parts], device)
                return dist.world * torch.stack([e / max(d, _EPS) for (e, _), d in zip(parts, denominators)]).mean()
        if not parts:
            return torch.zeros(())
        return torch.stack([e / t.clamp_min(_EPS) for e, t in parts]).mean()
