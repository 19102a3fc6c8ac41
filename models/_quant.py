"""Uniform fake quantization with a straight-through estimator, PTQ observers and an LSQ-style step.

One `FakeQuant` module quantizes one tensor: per tensor for activations (`channels=None`), per
output channel for a linear weight (`channels=out_features`, symmetric). Bits `None` = float.
With the `repq` observer an activation quantizer calibrates as RepQ-ViT does (`_repq.py`), on a
uniform grid or, for the post-softmax attention (`grid="log_sqrt2"`), on RepQ-ViT's log√2 grid.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn as nn

from mixaq.models._ofq import statsq_codes, statsq_quantize
from mixaq.models._repq import log_sqrt2_quantize, log_sqrt2_search, uniform_search
from mixaq.simulator import MixaqError
from mixaq.models._config import MINMAX, MSE, PERCENTILE, REPQ

__all__ = ["FakeQuant", "GRIDS", "fake_quantize", "global_batch", "qrange", "qparams_from_range"]

# (offset, global size, local size, generator) of this process's images in a training step's global
# batch; None: no step context (see `global_batch`).
_GLOBAL_BATCH: list[tuple[int, int, int, "torch.Generator | None"] | None] = [None]


@contextlib.contextmanager
def global_batch(offset: int, size: int, local: int, generator: torch.Generator | None = None) -> Iterator[None]:
    """Inside, this process computes images [offset, offset + local) of a training step's global batch
    of `size` (one process: 0, B, B; a distributed step: this rank's slice). What depends on the whole
    batch then uses the global one, so that a distributed step equals one process on the global
    batch: LSQ's gradient scale 1/sqrt(N Qp) counts the global batch's N elements of an activation,
    and stochastic depth (`_two_branch`) draws for all `size` images from `generator` (the step's own,
    seeded alike on every rank; not torch's global one, which other code draws from per image) and
    keeps this process's slice."""
    _GLOBAL_BATCH.append((int(offset), int(size), int(local), generator))
    try:
        yield
    finally:
        _GLOBAL_BATCH.pop()


# Activation grids: uniform affine, or RepQ-ViT's log√2 (post-softmax attention, `repq` only).
GRIDS: tuple[str, ...] = ("uniform", "log_sqrt2")

# Observers keep a strided subsample of each calibration batch for percentile / MSE.
_SAMPLE_PER_BATCH = 1 << 15
_SAMPLE_TOTAL = 1 << 18
# The MSE search scores candidates on at most this many of the pooled values.
_MSE_SAMPLE = 1 << 15
# Clipping candidates (fractions of the observed range) tried by the MSE search; geometric, because
# activation outliers can sit orders of magnitude above the bulk.
_MSE_CANDIDATES = torch.logspace(-3, 0, 80)
_MSE_CHUNK_ELEMENTS = 1 << 22
_MIN_SCALE = 1e-8


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """Integer grid: signed two's complement when symmetric, unsigned otherwise."""
    if symmetric:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def qparams_from_range(
    lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) covering [lo, hi] (widened to contain 0, as integer kernels need)."""
    qmin, qmax = qrange(bits, symmetric)
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.zeros_like(hi))
    if symmetric:
        scale = (torch.maximum(-lo, hi) / qmax).clamp_min(_MIN_SCALE)
        return scale, torch.zeros_like(scale)
    scale = ((hi - lo) / (qmax - qmin)).clamp_min(_MIN_SCALE)
    zero_point = (qmin - lo / scale).round().clamp(qmin, qmax)
    return scale, zero_point


def _grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Value of x, gradient times `factor` (LSQ's step-size gradient scaling)."""
    return x * factor + (x - x * factor).detach()


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (x.round() - x).detach()


def fake_quantize(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int, inplace: bool = False
) -> torch.Tensor:
    """round-clamp-dequantize; gradients: STE inside the grid, zero outside, LSQ for a learnable scale.

    The zero point is integer-valued, so round(x/s + z) - z == round(x/s) on [qmin - z, qmax - z]:
    four passes over x instead of six. `inplace` (inference only) reuses x's storage.
    """
    lo, hi = qmin - zero_point, qmax - zero_point
    if not torch.is_grad_enabled() or not (x.requires_grad or scale.requires_grad or zero_point.requires_grad):
        y = x.mul_(scale.reciprocal()) if inplace else x.mul(scale.reciprocal())
        return y.round_().clamp_(lo, hi).mul_(scale)
    # Clamp before rounding: the same values, and the STE passes gradient on the whole grid span.
    return _round_ste((x * scale.reciprocal()).clamp(lo, hi)) * scale


def _strided_sample(x: torch.Tensor, limit: int) -> torch.Tensor:
    # Deterministic (strided, not random) so two identically fed observers agree exactly.
    flat = x.detach().reshape(-1)
    step = max(1, flat.numel() // limit)
    return flat[::step][:limit].float()


def _mse_range(
    sample: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink [lo, hi] by the candidate fraction with least quantization MSE; rows are channels.

    sample (R, S), lo/hi (R,) -> best (lo, hi) per row. Candidates are evaluated in chunks of
    (A, R, S) so a big weight matrix never needs A copies at once.
    """
    qmin, qmax = qrange(bits, symmetric)
    alphas = _MSE_CANDIDATES.to(sample.device)
    chunk = max(1, _MSE_CHUNK_ELEMENTS // max(1, sample.numel()))
    errors = []
    for start in range(0, len(alphas), chunk):  # a handful of chunks, once per quantizer
        a = alphas[start : start + chunk, None]  # (A, 1)
        scale, zp = qparams_from_range(lo * a, hi * a, bits, symmetric)  # (A, R)
        deq = fake_quantize(sample, scale[..., None], zp[..., None], qmin, qmax)  # (A, R, S)
        errors.append((deq - sample).pow_(2).mean(-1))
    best = torch.cat(errors).argmin(0)  # (R,)
    return lo * alphas[best], hi * alphas[best]


class FakeQuant(nn.Module):
    """Fake quantizer for one tensor; configure with `configure`, calibrate via `observing`.

    Activations need calibration (`models.calibrating`) before a quantized forward; weights derive
    their per-channel range from the weight itself (cached while the weight is unchanged).
    With `learnable`, `scale` (and `zero_point` when asymmetric) are `nn.Parameter`s trained with
    LSQ gradients, initialised from the observer at calibration (or the weight on first use).
    """

    def __init__(self, channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.bits: int | None = None
        self.symmetric = channels is not None
        self.observer = MINMAX
        self.percentile = 99.99
        self.learnable = False
        self.grid = "uniform"
        self.observing = False
        shape = (channels, 1) if channels is not None else (1,)
        self.register_buffer("scale", torch.ones(shape))
        self.register_buffer("zero_point", torch.zeros(shape))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        # Python mirror of the buffer, so forwards never sync a device to read it.
        self._is_calibrated = False
        self._scalars: tuple[float, float, float, float] | None = None
        self._reset_stats()
        self._weight_cache: tuple | None = None  # (key, scale, zero_point, quantized weight or None)

    def extra_repr(self) -> str:
        kind = f"per-channel({self.channels})" if self.channels is not None else "per-tensor"
        grid = "" if self.grid == "uniform" else f", grid={self.grid}"
        return (f"bits={self.bits}, {kind}, symmetric={self.symmetric}, observer={self.observer}, "
                f"learnable={self.learnable}{grid}")

    def configure(self, bits: int | None, symmetric: bool, observer: str, percentile: float, learnable: bool,
                  grid: str = "uniform") -> None:
        """Set the quantizer; any change forgets the calibration (ranges depend on all of these)."""
        setting = (bits, symmetric, observer, percentile, learnable, grid)
        if setting == (self.bits, self.symmetric, self.observer, self.percentile, self.learnable, self.grid):
            return
        self.bits, self.symmetric, self.observer, self.percentile, self.learnable, self.grid = setting
        self.reset()

    def reset(self) -> None:
        """Forget calibration; re-register scale/zero-point as parameters iff learnable."""
        like = dict(device=self.scale.device, dtype=self.scale.dtype)
        shape = self.scale.shape
        for name, init in (("scale", torch.ones(shape, **like)), ("zero_point", torch.zeros(shape, **like))):
            delattr(self, name)
            learn = self.learnable and (name == "scale" or not self.symmetric)
            if learn:
                self.register_parameter(name, nn.Parameter(init))
            else:
                self.register_buffer(name, init)
        self.calibrated.fill_(False)
        self._is_calibrated = False
        self._scalars = None
        self._reset_stats()
        self._weight_cache = None

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:  # noqa: ANN001 (torch's signature)
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._is_calibrated = bool(self.calibrated)
        self._weight_cache = None
        self._sync_scalars()

    def _reset_stats(self) -> None:
        self._min: torch.Tensor | None = None
        self._max: torch.Tensor | None = None
        self._samples: list[torch.Tensor] = []
        self._n_sampled = 0

    @property
    def enabled(self) -> bool:
        return self.bits is not None

    # -- calibration ---------------------------------------------------------------------------
    def observe(self, x: torch.Tensor) -> None:
        if not self.enabled:
            return
        x = x.detach()
        mn, mx = torch.aminmax(x)
        self._min = mn if self._min is None else torch.minimum(self._min, mn)
        self._max = mx if self._max is None else torch.maximum(self._max, mx)
        if self.observer != MINMAX and self._n_sampled < _SAMPLE_TOTAL:
            sample = _strided_sample(x, min(_SAMPLE_PER_BATCH, _SAMPLE_TOTAL - self._n_sampled))
            self._samples.append(sample)
            self._n_sampled += sample.numel()

    def freeze(self) -> None:
        """Turn what `observe` saw into scale/zero-point (no-op if it saw nothing)."""
        if not self.enabled or self._min is None:
            return
        lo, hi = self._min.reshape(1).float(), self._max.reshape(1).float()
        if self.observer == REPQ:
            sample = torch.cat(self._samples)
            if self.grid == "log_sqrt2":
                scale = log_sqrt2_search(sample, self.bits)
                self._set_qparams(scale, torch.zeros_like(scale))
            else:
                self._set_qparams(*uniform_search(sample[None], self.bits)[:2])
            self._reset_stats()
            return
        if self.observer == PERCENTILE:
            sample = torch.cat(self._samples)
            q = self.percentile / 100.0
            if self.symmetric:
                hi = torch.quantile(sample.abs(), q).reshape(1)
                lo = -hi
            else:
                lo = torch.quantile(sample, 1.0 - q).reshape(1)
                hi = torch.quantile(sample, q).reshape(1)
        elif self.observer == MSE:
            sample = _strided_sample(torch.cat(self._samples), _MSE_SAMPLE)
            lo, hi = _mse_range(sample[None], lo, hi, self.bits, self.symmetric)
        self._set_qparams(*qparams_from_range(lo, hi, self.bits, self.symmetric))
        self._reset_stats()

    def _set_qparams(self, scale: torch.Tensor, zero_point: torch.Tensor) -> None:
        with torch.no_grad():
            self.scale.copy_(scale.reshape(self.scale.shape))
            self.zero_point.copy_(zero_point.reshape(self.zero_point.shape))
        self.calibrated.fill_(True)
        self._is_calibrated = True
        self._sync_scalars()

    def _sync_scalars(self) -> None:
        """Python copies of a fixed per-tensor grid: scalar ops are the fastest fake-quant on CPU and
        need no device sync per forward."""
        self._scalars = None
        if self.grid != "uniform":
            return
        if self._is_calibrated and self.channels is None and not self.learnable and self.bits is not None:
            qmin, qmax = qrange(self.bits, self.symmetric)
            scale, zp = float(self.scale.reshape(-1)[0]), float(self.zero_point.reshape(-1)[0])
            self._scalars = (1.0 / scale, scale, qmin - zp, qmax - zp)

    # -- weights ---------------------------------------------------------------------------------
    def _weight_qparams(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = w.detach().float()
        lo, hi = w.amin(1), w.amax(1)
        if self.observer == MSE:
            lo, hi = _mse_range(w, lo, hi, self.bits, self.symmetric)
        scale, zp = qparams_from_range(lo, hi, self.bits, self.symmetric)
        return scale[:, None], zp[:, None]

    def weight_codes(self, w: torch.Tensor) -> torch.Tensor:
        """Integer codes of weight `w` under this quantizer as it stands (the oscillation counter's input)."""
        with torch.no_grad():
            if self.observer == "statsq":
                return statsq_codes(w, self.bits)
            qmin, qmax = qrange(self.bits, self.symmetric)
            if self.learnable and self._is_calibrated:
                scale, zp = self.scale.clamp_min(_MIN_SCALE), self.zero_point.round()
            else:
                scale, zp = self._weight_qparams(w)
            return (w / scale).round().clamp(qmin - zp, qmax - zp)

    def _quantize_weight(self, w: torch.Tensor) -> torch.Tensor:
        qmin, qmax = qrange(self.bits, self.symmetric)
        if self.observer == "statsq":  # OFQ: the step follows the weight's statistics, never learned
            if torch.is_grad_enabled() and w.requires_grad:
                return statsq_quantize(w, self.bits)
            key = (w.data_ptr(), w._version, w.device, w.dtype, self.bits, self.observer)
            if self._weight_cache is None or self._weight_cache[0] != key:
                self._weight_cache = (key, None, None, statsq_quantize(w.detach(), self.bits))
            return self._weight_cache[3]
        if self.learnable:
            if not self._is_calibrated:
                self._set_qparams(*self._weight_qparams(w))
            return self._quantize_learnable(w)
        key = (w.data_ptr(), w._version, w.device, w.dtype, self.bits, self.observer)
        if self._weight_cache is None or self._weight_cache[0] != key:
            self._weight_cache = (key, *self._weight_qparams(w), None)
        key, scale, zp, frozen = self._weight_cache
        if torch.is_grad_enabled() and w.requires_grad:
            return fake_quantize(w, scale.to(w.dtype), zp.to(w.dtype), qmin, qmax)
        if frozen is None:
            # Inference: quantize an unchanged weight once, not on every forward.
            frozen = fake_quantize(w.detach(), scale.to(w.dtype), zp.to(w.dtype), qmin, qmax)
            self._weight_cache = (key, scale, zp, frozen)
        return frozen

    # -- forward ---------------------------------------------------------------------------------
    def _quantize_learnable(self, x: torch.Tensor) -> torch.Tensor:
        qmin, qmax = qrange(self.bits, self.symmetric)
        per_step = x.numel() // self.scale.numel()
        if self.channels is None and _GLOBAL_BATCH[-1] is not None:  # LSQ's N: the global batch's elements
            per_step = per_step * _GLOBAL_BATCH[-1][1] / _GLOBAL_BATCH[-1][2]
        factor = 1.0 / math.sqrt(per_step * qmax)
        scale = _grad_scale(self.scale.clamp_min(_MIN_SCALE), factor)
        zp = self.zero_point
        if zp.requires_grad:
            zp = _round_ste(_grad_scale(zp, factor)).clamp(qmin, qmax)
        return fake_quantize(x, scale, zp, qmin, qmax)

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Fake-quantized x. `inplace` lets an inference forward overwrite x (callers pass it only
        for intermediates nothing else reads)."""
        if not self.enabled:
            return x
        if self.channels is not None:
            return self._quantize_weight(x)
        if self.observing:
            self.observe(x)
            return x
        if not self._is_calibrated:
            raise MixaqError(
                "activation quantizer is not calibrated: run forwards inside models.calibrating(model) "
                "after convert_swin/set_quant"
            )
        if self.grid == "log_sqrt2":
            y = log_sqrt2_quantize(x, self.scale, self.bits)
            return x + (y - x).detach() if torch.is_grad_enabled() and x.requires_grad else y
        if self.learnable:
            return self._quantize_learnable(x)
        inv_scale, scale, lo, hi = self._scalars
        if torch.is_grad_enabled() and x.requires_grad:
            return _round_ste((x * inv_scale).clamp(lo, hi)) * scale
        y = x.mul_(inv_scale) if inplace else x.mul(inv_scale)
        return y.round_().clamp_(lo, hi).mul_(scale)
