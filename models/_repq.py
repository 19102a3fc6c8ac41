"""RepQ-ViT post-training quantization (Li et al., ICCV 2023; public code zkkli/RepQ-ViT), per branch.

Three pieces, each following RepQ-ViT's calibration rules (re-implemented, cross-checked against
their code by `python -m benchmarks.check_repq`):

- `uniform_search`: the range of a uniform asymmetric quantizer, chosen among the
  (1-p, p) quantile pairs, p in `PERCENTILES`, by least quantization MSE. Rows are channels.
- log√2 quantizer for the post-softmax attention (`log_sqrt2_search`, `log_sqrt2_quantize`) and its
  log2 form, `log2_codes` + `log2_shift_matmul`, which bit-shift hardware runs.
- `ChannelFold`: per-channel scale / zero point of a post-LayerNorm tensor, reparameterized into one
  per-tensor quantizer by folding the channel factors into the LayerNorm affine and the input
  columns of the following linear. One `ChannelFold` per block and post-LN tensor serves both
  branches: the channel ranges (and with them the ratios `r`, so the folded weight `W·r`) are shared;
  each branch has its own per-tensor step, integer zero point and shift `b` (LayerNorm copy, bias).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "PERCENTILES",
    "ChannelFold",
    "log2_codes",
    "log2_shift_matmul",
    "log_sqrt2_quantize",
    "log_sqrt2_search",
    "uniform_search",
]

# RepQ-ViT's candidate upper percentiles (the lower one is 1 - p).
PERCENTILES: tuple[float, ...] = (0.999, 0.9999, 0.99999)
# A channel observer keeps a strided subsample of token rows: at most this many values per batch
# and in all (exact, i.e. everything, whenever the calibration tensors are smaller).
_CHANNEL_VALUES_PER_BATCH = 1 << 19
_CHANNEL_VALUES_TOTAL = 1 << 21
_MIN_SCALE = 1e-8
BRANCHES = ("high", "low")


def _real(x: torch.Tensor) -> torch.Tensor:
    """float32, or float64 if x is (the fold stays exact in a float64 model)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _quantiles(x: torch.Tensor, qs: list[float]) -> torch.Tensor:
    """torch.quantile of every row at each q, one sort: (len(qs), R). Equal bit for bit to RepQ-ViT's
    one-q, one-channel calls (q cast to x's dtype either way; rows are independent)."""
    return torch.quantile(x, torch.tensor(qs, dtype=x.dtype, device=x.device), dim=-1)


def _uniform_fq(x: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor, bits: int) -> torch.Tensor:
    """RepQ-ViT's `UniformQuantizer.quantize`, op for op (its MSE scores must match bit for bit)."""
    delta = (hi - lo) / (2**bits - 1)
    zero_point = (-lo / delta).round()
    x_int = torch.round(x / delta)
    x_quant = torch.clamp(x_int + zero_point, 0, 2**bits - 1)
    return (x_quant - zero_point) * delta


def uniform_search(sample: torch.Tensor, bits: int, percentiles: tuple[float, ...] = PERCENTILES
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RepQ-ViT's range search for a uniform asymmetric quantizer; sample (R, S), rows independent.

    Returns (scale, zero_point, lo, hi), each (R,): among the quantile pairs (1-p, p) the one with
    least MSE (ties: the first, as RepQ-ViT's strict `<`). The zero point is round(-lo/scale) and is
    not clamped (a range that excludes 0 keeps an out-of-grid zero point, as theirs).
    """
    x = _real(sample)
    quantiles = _quantiles(x, [q for p in percentiles for q in (p, 1.0 - p)])[..., None]  # (2P, R, 1)
    best = None
    for i in range(len(percentiles)):
        hi, lo = quantiles[2 * i], quantiles[2 * i + 1]  # (R, 1)
        score = (x - _uniform_fq(x, hi, lo, bits)).abs().pow(2).mean(-1)  # (R,)
        if best is None:
            best = [score, lo, hi]
        else:
            better = score < best[0]
            best = [torch.where(better, score, best[0]), torch.where(better[:, None], lo, best[1]),
                    torch.where(better[:, None], hi, best[2])]
    lo, hi = best[1][:, 0], best[2][:, 0]
    scale = ((hi - lo) / (2**bits - 1)).clamp_min(_MIN_SCALE)
    return scale, (-lo / scale).round(), lo, hi


def log_sqrt2_quantize(x: torch.Tensor, scale: torch.Tensor | float, bits: int) -> torch.Tensor:
    """RepQ-ViT's log√2 quantizer: code q = clamp(round(-2·log2(x/scale)), 0, 2^b-1), value
    scale·2^(-q/2) computed as 2^(-⌈q/2⌉)·(√2 if q odd else 1)·scale, and 0 where the code
    overflows (x below scale·2^(-(2^b-1)/2) by more than half a step; x = 0 included)."""
    levels = 2**bits
    x_int = torch.round(-1 * (x / scale).log2() * 2)
    underflow = x_int >= levels
    x_quant = torch.clamp(x_int, 0, levels - 1)
    odd = (x_quant % 2) * (math.sqrt(2) - 1) + 1
    out = 2 ** (-1 * torch.ceil(x_quant / 2)) * odd * scale
    return out.masked_fill_(underflow, 0.0)


def log_sqrt2_search(sample: torch.Tensor, bits: int) -> torch.Tensor:
    """RepQ-ViT's log√2 scale: the p-quantile, p in `PERCENTILES`, of least quantization MSE."""
    x = _real(sample).reshape(-1)
    best_score, best = None, None
    for scale in _quantiles(x, list(PERCENTILES)):
        score = (x - log_sqrt2_quantize(x, scale, bits)).abs().pow(2).mean()
        if best_score is None or score < best_score:
            best_score, best = score, scale
    return best.clamp_min(_MIN_SCALE).reshape(1)


def log2_codes(x: torch.Tensor, scale: float, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The log2 (bit-shift) form of the log√2 code: (shift ⌈q/2⌉ int64, odd bool, zero bool), so
    that the quantized value is scale·2^(-shift)·(√2 if odd else 1), or 0 where `zero`."""
    levels = 2**bits
    x_int = torch.round(-1 * (x / scale).log2() * 2)
    zero = x_int >= levels
    q = torch.clamp(x_int, 0, levels - 1).long()
    return (q + 1) // 2, (q % 2).bool(), zero


def log2_shift_matmul(shift: torch.Tensor, odd: torch.Tensor, zero: torch.Tensor, v_int: torch.Tensor) -> torch.Tensor:
    """attn·V from log2 codes and integer V, as shift-add hardware computes it, in float64:
    Σ_j (v_j >> shift_j) over even codes + √2 · Σ_j (v_j >> shift_j) over odd codes (shifts exact,
    i.e. with fractional bits). Multiply by the two scales for the real-valued product.
    shift/odd/zero (..., N, N), v_int (..., N, d) -> (..., N, d)."""
    shifted = torch.ldexp(torch.ones_like(shift, dtype=torch.float64), -shift).masked_fill(zero, 0.0)  # 2^-shift
    v = v_int.double()
    even_sum = shifted.masked_fill(odd, 0.0) @ v
    odd_sum = shifted.masked_fill(~odd, 0.0) @ v
    return even_sum + math.sqrt(2) * odd_sum


class ChannelFold(nn.Module):
    """RepQ-ViT's scale reparameterization of one post-LayerNorm tensor (LN -> linear) of a block.

    Calibration: `observe` collects token rows; `freeze(bits, search_bits)` chooses per-channel
    ranges [lo_c, hi_c] with `uniform_search` at `search_bits` and derives, with range_c = hi_c - lo_c:
      shared   r_c = range_c / mean(range)                (independent of the bit width)
      branch   δ_t = mean(range) / (2^b - 1), per-channel δ_c = r_c·δ_t, z_c = round(-lo_c/δ_c),
               z_t = round(mean(z_c)) (an integer, so the fold is exact), b_c = δ_t·(z_t - z_c).
    The reparameterized network then runs LN with affine (γ/r, β/r - b), a per-tensor quantizer
    (δ_t, z_t) and the linear with weight W·r (quantized per output channel, shared) and bias
    bias + Q(W·r)·b (per branch): exactly the per-channel quantizer (δ_c, z_c) on the original LN
    output feeding Q(W·r)·diag(1/r).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("ratio", torch.ones(channels))
        self.register_buffer("shift", torch.zeros(len(BRANCHES), channels))
        self.register_buffer("lo", torch.zeros(channels))
        self.register_buffer("hi", torch.zeros(channels))
        self.register_buffer("active", torch.zeros((), dtype=torch.bool))
        self._active = False
        self._rows: list[torch.Tensor] = []
        self._n_values = 0
        self._weight_cache: tuple | None = None

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:  # noqa: ANN001 (torch's signature)
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._active = bool(self.active)
        self._weight_cache = None

    def reset(self) -> None:
        self.ratio.fill_(1.0)
        self.shift.zero_()
        self.active.fill_(False)
        self._active = False
        self._rows, self._n_values = [], 0
        self._weight_cache = None

    @property
    def is_active(self) -> bool:
        return self._active

    # -- calibration ---------------------------------------------------------------------------
    def observe(self, x: torch.Tensor) -> None:
        """x (..., C): keep a strided subsample of its token rows (all of them while small)."""
        room = _CHANNEL_VALUES_TOTAL - self._n_values
        if room < self.channels:
            return
        rows = x.detach().reshape(-1, self.channels)
        limit = max(1, min(_CHANNEL_VALUES_PER_BATCH, room) // self.channels)
        step = max(1, -(-rows.shape[0] // limit))
        kept = _real(rows[::step][:limit])
        self._rows.append(kept)
        self._n_values += kept.numel()

    def freeze(self, branch_bits: dict[str, int | None], search_bits: int) -> dict[str, tuple[float, float]]:
        """Per-channel ranges at `search_bits`, the shared ratios and each quantized branch's shift;
        returns {branch: (per-tensor scale δ_t, integer zero point z_t)} for the quantized branches."""
        if not self._rows:
            return {}
        sample = torch.cat(self._rows).t()  # (C, S)
        self._rows, self._n_values = [], 0
        _, _, lo, hi = uniform_search(sample, search_bits)
        span = (hi - lo).clamp_min(_MIN_SCALE)
        mean_span = span.mean()
        ratio = span / mean_span
        out = {}
        with torch.no_grad():
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.ratio.copy_(ratio)
            self.shift.zero_()
            for i, branch in enumerate(BRANCHES):
                bits = branch_bits.get(branch)
                if bits is None:
                    continue
                target_scale = float(mean_span / (2**bits - 1))
                channel_zp = (-lo / (ratio * target_scale)).round()
                target_zp = float(channel_zp.mean().round())
                self.shift[i].copy_(target_scale * (target_zp - channel_zp))
                out[branch] = (target_scale, target_zp)
        self.active.fill_(True)
        self._active = True
        self._weight_cache = None
        return out

    # -- the reparameterized network -------------------------------------------------------------
    def norm(self, norm: nn.LayerNorm, branch: str, x: torch.Tensor) -> torch.Tensor:
        """The branch's LayerNorm with the folded affine (γ/r, β/r - b): original output / r - b."""
        shift = self.shift[BRANCHES.index(branch)]
        weight = norm.weight / self.ratio if norm.weight is not None else self.ratio.reciprocal()
        bias = (norm.bias / self.ratio if norm.bias is not None else 0.0) - shift
        return F.layer_norm(x, norm.normalized_shape, weight, bias, norm.eps)

    def pad_value(self, branch: str) -> torch.Tensor:
        """What a zero of the original LN output becomes after the fold (timm pads with zeros)."""
        return -self.shift[BRANCHES.index(branch)]

    def weight(self, weight: torch.Tensor) -> torch.Tensor:
        """W·r (input columns scaled), cached while W and r are unchanged (one tensor, so the
        weight quantizer's own cache holds too)."""
        if torch.is_grad_enabled() and weight.requires_grad:
            return weight * self.ratio
        key = (weight.data_ptr(), weight._version, weight.dtype, self.ratio._version, self.ratio.data_ptr())
        if self._weight_cache is None or self._weight_cache[0] != key:
            self._weight_cache = (key, (weight * self.ratio).detach())
        return self._weight_cache[1]

    def bias(self, branch: str, bias: torch.Tensor | None, quantized_weight: torch.Tensor) -> torch.Tensor:
        """bias + Q(W·r)·b: the branch's shift folded through the (quantized) folded weight."""
        correction = quantized_weight @ self.shift[BRANCHES.index(branch)]
        return correction if bias is None else bias + correction
