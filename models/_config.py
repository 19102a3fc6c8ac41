"""What to quantize (`QuantConfig`) and how windows are split between branches (`MixConfig`)."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mixaq.simulator import MixaqError

__all__ = ["ACT_TARGETS", "CALIBRATIONS", "MixConfig", "QuantConfig", "OBSERVERS", "MIX_MODES", "PAPER_PTQ_OBSERVER",
           "REPQ_OBSERVERS", "STRATEGIES", "MINMAX", "PERCENTILE", "MSE", "REPQ", "REPQ_MINMAX", "IMPORTANCE", "RANDOM",
           "REVERSED", "check_mix_choices"]

# Activation tensors of one Swin block that can carry a fake quantizer (per branch):
# the inputs of the four linears and the four operands of the two attention matmuls.
ACT_TARGETS: tuple[str, ...] = ("qkv_in", "q", "k", "attn", "v", "proj_in", "fc1_in", "fc2_in")
# RepQ-ViT PTQ (docs/models.md "RepQ-ViT"): per-channel post-LayerNorm quantizers folded into the
# LN copies and the next linear, and the log√2 grid for the post-softmax attention. The name maps
# to the range rule of the remaining (uniform, per-tensor) activations: `repq` uses RepQ-ViT's own
# percentile search (as their code), `repq_minmax` min-max ranges (today's default for them).
MINMAX, PERCENTILE, MSE, REPQ, REPQ_MINMAX = "minmax", "percentile", "mse", "repq", "repq_minmax"
REPQ_OBSERVERS: dict[str, str] = {REPQ: REPQ, REPQ_MINMAX: MINMAX}
OBSERVERS: tuple[str, ...] = (MINMAX, PERCENTILE, MSE, *REPQ_OBSERVERS)
# The PTQ of the paper-reproduction paths (`QuantConfig.paper_ptq`, the official-checkpoint tables):
# RepQ-ViT as published, which MixA-Q builds on. On the embedded default detector `repq_minmax` is
# the one that measured at or above min-max in every row (docs/results_ptq_repq.md).
PAPER_PTQ_OBSERVER = "repq"
# `statsq` is OFQ's statistical weight quantizer (`models/_ofq.py`): the step follows the weight
# (2·mean|w| per row) every forward instead of being calibrated once or learned.
WEIGHT_OBSERVERS: tuple[str, ...] = ("minmax", "mse", "statsq")
MIX_MODES: tuple[str, ...] = ("ratio", "threshold")
IMPORTANCE, RANDOM, REVERSED = "importance", "random", "reversed"
STRATEGIES: tuple[str, ...] = (IMPORTANCE, RANDOM, REVERSED)
# How PTQ feeds each branch's activation observers (see `QuantConfig`).
CALIBRATIONS: tuple[str, ...] = ("routed", "shared")


def check_mix_choices(mode: str, strategy: str, where: str) -> None:
    """The vocabulary check of a window mix's mode and strategy (`MixConfig`, search's `DesignPoint`)."""
    if mode not in MIX_MODES:
        raise MixaqError(f"{where}: mode must be one of {', '.join(MIX_MODES)}, got {mode!r}")
    if strategy not in STRATEGIES:
        raise MixaqError(f"{where}: strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def _bits(name: str, bits: object) -> int | None:
    """Validated bit width as a Python int (numpy integers accepted), or None."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 2 <= bits <= 8:
        raise MixaqError(f"quant: {name} must be an integer in 2..8 or None (float), got {bits!r}")
    return int(bits)


@dataclass(frozen=True)
class QuantConfig:
    """Fake-quantization setting shared by every converted block.

    Activations are quantized per tensor (one step per branch and target), weights per output
    channel (symmetric; one quantizer per linear, shared by both branches because the weight is one
    tensor). `None` bits mean float pass-through. `targets` picks which activation tensors of
    `ACT_TARGETS` are quantized; the default (all eight) is the paper-style setting.

    `calibration="shared"` (default): both branches observe every window, so one calibration serves
    any mix. `"routed"`: each branch's observers see only the windows the current mix routes to it
    (the low-bit ranges fit the windows that branch serves); a calibration then holds only for the
    mix it ran under. On the default detector the two gave the same mAP within 0.5 AP
    (docs/models.md), so the cheaper one is the default.

    `observer="repq"` is RepQ-ViT's PTQ (asymmetric activations, not learnable): the other
    observers set one per-tensor range; repq also reparameterizes the post-LayerNorm tensors and
    puts the post-softmax attention on a log√2 grid. `"repq_minmax"` does the same but gives the
    remaining activations min-max ranges instead of RepQ-ViT's percentile search.

    OFQ (`docs/qat.md`): `weight_observer="statsq"` quantizes the weights with StatsQ (never learned,
    even with `learnable`, which then applies to the activation steps only); `qkr=True` runs the
    attention query-key reparameterized (W_q,hᵀ W_k,h quantized as one weight; needs statsq).
    """

    @property
    def repq(self) -> bool:
        """RepQ-ViT PTQ: folded post-LN quantizers and log√2 attention."""
        return self.observer in REPQ_OBSERVERS

    high_act_bits: int | None = 8
    low_act_bits: int | None = 4
    weight_bits: int | None = 4
    observer: str = "minmax"
    percentile: float = 99.99
    act_symmetric: bool = False
    weight_observer: str = "minmax"
    learnable: bool = False
    targets: tuple[str, ...] = ACT_TARGETS
    calibration: str = "shared"
    qkr: bool = False

    def __post_init__(self) -> None:
        for name in ("high_act_bits", "low_act_bits", "weight_bits"):
            object.__setattr__(self, name, _bits(name, getattr(self, name)))
        if self.observer not in OBSERVERS:
            raise MixaqError(f"quant: observer must be one of {', '.join(OBSERVERS)}, got {self.observer!r}")
        if self.observer in REPQ_OBSERVERS and (self.learnable or self.act_symmetric):
            raise MixaqError(f"quant: observer {self.observer!r} is RepQ-ViT's post-training quantization: it needs "
                             "learnable=False and act_symmetric=False")
        if self.weight_observer not in WEIGHT_OBSERVERS:
            raise MixaqError(
                f"quant: weight_observer must be one of {', '.join(WEIGHT_OBSERVERS)}, got {self.weight_observer!r}"
            )
        if not isinstance(self.qkr, bool):
            raise MixaqError(f"quant: qkr must be true or false, got {self.qkr!r}")
        if self.qkr and (self.weight_observer != "statsq" or self.observer in REPQ_OBSERVERS):
            raise MixaqError("quant: qkr (OFQ's query-key reparameterization) needs weight_observer 'statsq' "
                             "and a non-RepQ observer")
        if isinstance(self.percentile, bool) or not (
            isinstance(self.percentile, numbers.Real) and 50.0 < self.percentile <= 100.0
        ):
            raise MixaqError(f"quant: percentile must lie in (50, 100], got {self.percentile!r}")
        object.__setattr__(self, "percentile", float(self.percentile))
        if self.calibration not in CALIBRATIONS:
            raise MixaqError(f"quant: calibration must be one of {', '.join(CALIBRATIONS)}, got {self.calibration!r}")
        targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        unknown = [t for t in targets if t not in ACT_TARGETS]
        if unknown:
            raise MixaqError(f"quant: unknown target(s) {unknown} (known: {', '.join(ACT_TARGETS)})")
        object.__setattr__(self, "targets", tuple(t for t in ACT_TARGETS if t in targets))

    @classmethod
    def float(cls) -> "QuantConfig":
        """Both branches and the weights in float: the converted model computes timm's function."""
        return cls(high_act_bits=None, low_act_bits=None, weight_bits=None)

    @classmethod
    def paper_ptq(cls) -> "QuantConfig":
        """MixA-Q's training-free setting: W4, high-bit A8, low-bit A4, RepQ-ViT PTQ (`PAPER_PTQ_OBSERVER`)."""
        return cls(high_act_bits=8, low_act_bits=4, weight_bits=4, observer=PAPER_PTQ_OBSERVER)

    @classmethod
    def paper_qat(cls) -> "QuantConfig":
        """MixA-Q's QAT setting: W4, high-bit A4, low-bit A2, LSQ-style learnable steps."""
        return cls(high_act_bits=4, low_act_bits=2, weight_bits=4, observer="mse", learnable=True)


def _per_pair(name: str, value: float | Sequence[float], low: float, high: float) -> float | tuple[float, ...]:
    """A float (all pairs) or a tuple of floats (one per pair); numpy numbers and arrays accepted."""
    scalar = np.ndim(value) == 0
    if np.ndim(value) > 1:
        raise MixaqError(f"mix: {name} must be a number or a flat sequence (one per block pair)")
    try:
        values = (value,) if scalar else tuple(np.asarray(value).reshape(-1).tolist())
    except (TypeError, ValueError):
        raise MixaqError(f"mix: {name} must be a number or a sequence of numbers, got {value!r}") from None
    if not values:
        raise MixaqError(f"mix: {name} must not be empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not low <= v <= high:
            raise MixaqError(f"mix: {name} values must lie in [{low}, {high}], got {v!r}")
    floats = tuple(float(v) for v in values)
    return floats[0] if scalar else floats


@dataclass(frozen=True)
class MixConfig:
    """How each block pair splits its windows into high-bit, low-bit and pruned.

    `mode="ratio"` (the paper's): per pair, the least important `prune_ratios` of the windows are
    pruned and the next `low_ratios` go low-bit (counts from `simulator.window_counts`).
    `mode="threshold"`: per pair and image, windows whose importance divided by the image's mean
    window importance is below `prune_thresholds` are pruned, below `low_thresholds` go low-bit;
    counts then vary per image. A scalar applies to every pair; a sequence has one value per pair.
    `strategy` picks which windows receive those counts: `importance` (least important go low/pruned),
    `reversed` (most important do), `random` (uniformly at random, reproducible from `seed`).
    """

    mode: str = "ratio"
    low_ratios: float | tuple[float, ...] = 0.0
    prune_ratios: float | tuple[float, ...] = 0.0
    low_thresholds: float | tuple[float, ...] = 0.0
    prune_thresholds: float | tuple[float, ...] = 0.0
    strategy: str = "importance"
    seed: int = 0

    def __post_init__(self) -> None:
        check_mix_choices(self.mode, self.strategy, "mix")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise MixaqError(f"mix: seed must be an integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "low_ratios", _per_pair("low_ratios", self.low_ratios, 0.0, 1.0))
        object.__setattr__(self, "prune_ratios", _per_pair("prune_ratios", self.prune_ratios, 0.0, 1.0))
        object.__setattr__(self, "low_thresholds", _per_pair("low_thresholds", self.low_thresholds, 0.0, math.inf))
        object.__setattr__(self, "prune_thresholds", _per_pair("prune_thresholds", self.prune_thresholds, 0.0, math.inf))

    def per_pair(self, name: str, num_pairs: int) -> tuple[float, ...]:
        """The knob `name` expanded to one value per block pair (checks the length)."""
        value = getattr(self, name)
        if isinstance(value, float):
            return (value,) * num_pairs
        if len(value) != num_pairs:
            raise MixaqError(f"mix: {name} has {len(value)} values but the model has {num_pairs} block pairs")
        return value
