"""OFQ's weight-side pieces (Liu et al., ICML 2023, public code nbasyl/OFQ), as its code defines them.

- StatsQ (`statsq_quantize`): the weight step comes from the weight's own statistics every forward,
  not from a learned parameter: per output row s = 2·mean|w|, w/s clipped to [-1, 1 - 1e-6], a
  mid-rise grid of 2^b levels (k + 0.5)·s/2^(b-1), k in [-2^(b-1), 2^(b-1) - 1] (no zero level), and
  an identity straight-through gradient everywhere (clipped weights included), as their
  `StatsQuantizer`.
- CGA (`cga_frozen`): confidence-guided annealing freezes every weight whose pre-rounding value is
  *not* within `boundary_range` of a rounding boundary (their `freeze_outside_boundary_weight_idx`):
  the weights still near a boundary keep training, the confident ones stop.
- QKR (`qk_product`): query-key reparameterization; per head the product W_q,hᵀ W_k,h (C x C) is
  what gets quantized, so the query and key weights cannot oscillate against each other.
- The oscillation counter (`OscillationTracker`): per step, how many integer weight codes changed and
  how many changed against the direction of their previous change (their `TrackOscillation`).

Nothing here is copied from their code; `benchmarks/check_ofq.py` compares against it.
"""
from __future__ import annotations

import torch

__all__ = ["OscillationTracker", "cga_frozen", "qk_product", "statsq_codes", "statsq_quantize"]

_CLIP_TOP = 1e-6  # their clip: [-clip/2, clip/2 - 1e-6] with clip = 2


def _pre_round(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(scale (R, 1), value before rounding, n = 2^(bits-1)) of a 2-D weight (R, C), as StatsQ computes them."""
    scale = 2 * w.detach().abs().mean(dim=1, keepdim=True)
    n = float(2 ** (bits - 1))
    clipped = torch.clamp(w.detach() / scale, min=-1.0, max=1.0 - _CLIP_TOP)
    return scale, clipped * n - 0.5, n


def statsq_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """StatsQ fake-quantized 2-D weight (rows = output channels); gradient 1 w.r.t. `w` everywhere."""
    scale, before, n = _pre_round(w, bits)
    q = scale * ((torch.round(before) + 0.5) / n)
    return q.detach() - w.detach() + w if w.requires_grad else q


def statsq_codes(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes in [-2^(bits-1), 2^(bits-1) - 1] of a 2-D weight under StatsQ."""
    return torch.round(_pre_round(w, bits)[1])


def cga_frozen(w: torch.Tensor, bits: int, boundary_range: float) -> torch.Tensor:
    """Boolean mask of the weights CGA freezes: no rounding boundary i + 0.5 (i from the smallest to
    one below the largest code present) lies within `boundary_range` of the pre-rounding value.

    Vectorized: with boundary_range < 0.5 only i = floor(value) can qualify; the comparison is the
    same floating-point expression as theirs (value - i against 0.5 ± range), so decisions agree
    exactly, ties included.
    """
    if not 0.0 <= boundary_range < 0.5:
        raise ValueError(f"boundary_range must lie in [0, 0.5), got {boundary_range}")
    _, before, _ = _pre_round(w, bits)
    codes = torch.round(before)
    i = torch.floor(before)
    offset = before - i
    near = (offset <= 0.5 + boundary_range) & (offset >= 0.5 - boundary_range)
    near &= (i >= codes.min()) & (i < codes.max())
    return ~near


def qk_product(qkv_weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(num_heads·C, C): per head W_q,hᵀ W_k,h, stacked, from timm's fused qkv weight (3C, C).

    Row block h is the bilinear form of head h: q_h(x)·k_h(y) = xᵀ W_qk,h y (biases aside)."""
    dim = qkv_weight.shape[1]
    head = dim // num_heads
    wq = qkv_weight[:dim].reshape(num_heads, head, dim)
    wk = qkv_weight[dim:2 * dim].reshape(num_heads, head, dim)
    return (wq.transpose(-2, -1) @ wk).reshape(num_heads * dim, dim)


class OscillationTracker:
    """Per layer and step: integer codes that changed (`switched`) and those that changed against the
    direction of their last change (`oscillated`, TrackOscillation's event), plus run totals.

    `update(name, codes)` after each optimizer step; the first call for a layer only records.
    """

    def __init__(self) -> None:
        self._prev: dict[str, torch.Tensor] = {}
        self._dir: dict[str, torch.Tensor] = {}
        self.totals: dict[str, dict[str, int]] = {}

    def update(self, name: str, codes: torch.Tensor) -> tuple[int, int]:
        codes = codes.detach()
        if name not in self._prev:
            self._prev[name] = codes.clone()
            self._dir[name] = torch.zeros_like(codes)
            self.totals[name] = {"switched": 0, "oscillated": 0, "weights": codes.numel(), "steps": 0}
            return 0, 0
        direction = torch.sign(torch.round(self._prev[name] - codes))
        switched = direction != 0
        oscillated = (self._dir[name] * direction) == -1
        self._dir[name] = torch.where(switched, direction, self._dir[name])
        self._prev[name] = codes.clone()
        n_switched, n_osc = int(switched.sum()), int(oscillated.sum())
        total = self.totals[name]
        total["switched"] += n_switched
        total["oscillated"] += n_osc
        total["steps"] += 1
        return n_switched, n_osc
