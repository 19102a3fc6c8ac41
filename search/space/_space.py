"""The design space: which knobs a sweep searches, and one point in it (`DesignPoint`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from mixaq.models._config import MIX_MODES, STRATEGIES
from mixaq.core._errors import MixaqError
from mixaq.core._util import json_ready

__all__ = ["DesignPoint", "SearchSpace"]


def _grid(low: float, high: float, step: float) -> tuple[float, ...]:
    n = int(round((high - low) / step))
    return tuple(round(low + i * step, 6) for i in range(n + 1))


@dataclass(frozen=True)
class DesignPoint:
    """One configuration: bit widths (None = float) and per-block-pair window knobs.

    In ratio mode `low_ratios`/`prune_ratios` are used; in threshold mode `low_thresholds`/
    `prune_thresholds` (importance relative to the image's mean window importance, see
    `models.MixConfig`).
    """

    high_act_bits: int | None
    low_act_bits: int | None
    weight_bits: int | None
    low_ratios: tuple[float, ...]
    prune_ratios: tuple[float, ...]
    mode: str = "ratio"
    low_thresholds: tuple[float, ...] = ()
    prune_thresholds: tuple[float, ...] = ()
    strategy: str = "importance"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MIX_MODES:
            raise MixaqError(f"design point: mode must be one of {', '.join(MIX_MODES)}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise MixaqError(f"design point: strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        for name in ("low_ratios", "prune_ratios", "low_thresholds", "prune_thresholds"):
            # Rounding makes 0.30000000000000004 and 0.3 the same point (and the same cache key).
            object.__setattr__(self, name, tuple(round(float(v), 6) for v in getattr(self, name)))
        if len(self.low_ratios) != len(self.prune_ratios):
            raise MixaqError("design point: low_ratios and prune_ratios need one value per block pair each")

    @property
    def is_float(self) -> bool:
        return self.high_act_bits is None and self.low_act_bits is None and self.weight_bits is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DesignPoint":
        kw = dict(data)
        for name in ("low_ratios", "prune_ratios", "low_thresholds", "prune_thresholds"):
            kw[name] = tuple(kw.get(name, ()))
        return cls(**kw)

    def describe(self) -> str:
        """Short label for tables and plots, e.g. `W4 A8/4 low=.3,.5 prune=0 importance`."""
        def bits(b: int | None) -> str:
            return "fp" if b is None else str(b)

        def knobs(vals: tuple[float, ...]) -> str:
            return ",".join(f"{v:g}" for v in vals) if len(set(vals)) > 1 else (f"{vals[0]:g}" if vals else "-")

        head = f"W{bits(self.weight_bits)} A{bits(self.high_act_bits)}/{bits(self.low_act_bits)}"
        if self.mode == "ratio":
            body = f"low={knobs(self.low_ratios)} prune={knobs(self.prune_ratios)}"
        else:
            body = f"low<{knobs(self.low_thresholds)} prune<{knobs(self.prune_thresholds)}"
        return f"{head} {body} {self.strategy}"


@dataclass(frozen=True)
class SearchSpace:
    """Which knobs are searched (switchable) and the values the others are fixed at.

    Bits are searched from `bit_choices` (the spec's supported widths within the quantizer's 2..8);
    the high/low activation pair is suggested independently and ordered, so `low <= high` always.
    """

    num_pairs: int
    high_act_bits: int = 8
    low_act_bits: int = 4
    weight_bits: int = 4
    search_act_bits: bool = False
    search_weight_bits: bool = False
    act_bit_choices: tuple[int, ...] = (2, 4, 8)
    weight_bit_choices: tuple[int, ...] = (2, 4, 8)
    mode: str = "ratio"
    search_low: bool = True
    search_prune: bool = False
    ratio_choices: tuple[float, ...] = field(default_factory=lambda: _grid(0.0, 0.8, 0.1))
    prune_choices: tuple[float, ...] = field(default_factory=lambda: _grid(0.0, 0.8, 0.1))
    low_threshold_choices: tuple[float, ...] = field(default_factory=lambda: _grid(0.0, 1.6, 0.1))
    prune_threshold_choices: tuple[float, ...] = field(default_factory=lambda: _grid(0.0, 1.0, 0.1))
    search_strategy: bool = False
    strategy: str = "importance"
    strategy_choices: tuple[str, ...] = STRATEGIES

    def __post_init__(self) -> None:
        if self.num_pairs <= 0:
            raise MixaqError(f"search space: num_pairs must be positive, got {self.num_pairs}")
        if self.mode not in MIX_MODES:
            raise MixaqError(f"search space: mode must be one of {', '.join(MIX_MODES)}, got {self.mode!r}")
        if self.strategy not in STRATEGIES or any(s not in STRATEGIES for s in self.strategy_choices):
            raise MixaqError(f"search space: strategies must be among {', '.join(STRATEGIES)}")
        if self.low_act_bits > self.high_act_bits:
            raise MixaqError(f"search space: low_act_bits {self.low_act_bits} exceeds high_act_bits {self.high_act_bits}")
        for name in ("act_bit_choices", "weight_bit_choices", "ratio_choices", "prune_choices",
                     "low_threshold_choices", "prune_threshold_choices", "strategy_choices"):
            if not getattr(self, name):
                raise MixaqError(f"search space: {name} is empty")
        if any(not 0.0 <= r <= 1.0 for r in self.ratio_choices + self.prune_choices):
            raise MixaqError("search space: ratio choices must lie in [0, 1]")
        if not (self.search_act_bits or self.search_weight_bits or self.search_low or self.search_prune
                or self.search_strategy):
            raise MixaqError("search space: every knob is switched off; nothing to search")

    def to_dict(self) -> dict[str, Any]:
        return json_ready(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SearchSpace":
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kw)

    # -- Optuna ---------------------------------------------------------------------------------
    def suggest(self, trial: Any) -> DesignPoint:
        """Draw a point through an Optuna trial; switched-off knobs stay at their fixed values."""
        high, low, weight = self.high_act_bits, self.low_act_bits, self.weight_bits
        if self.search_act_bits:
            a = trial.suggest_categorical("act_bits_a", list(self.act_bit_choices))
            b = trial.suggest_categorical("act_bits_b", list(self.act_bit_choices))
            high, low = max(a, b), min(a, b)
        if self.search_weight_bits:
            weight = trial.suggest_categorical("weight_bits", list(self.weight_bit_choices))
        zeros = (0.0,) * self.num_pairs
        low_r, prune_r, low_t, prune_t = zeros, zeros, (), ()
        if self.mode == "ratio":
            if self.search_low:
                low_r = tuple(trial.suggest_categorical(f"low_ratio_p{p}", list(self.ratio_choices))
                              for p in range(self.num_pairs))
            if self.search_prune:
                prune_r = tuple(trial.suggest_categorical(f"prune_ratio_p{p}", list(self.prune_choices))
                                for p in range(self.num_pairs))
        else:
            low_t = tuple(trial.suggest_categorical(f"low_threshold_p{p}", list(self.low_threshold_choices))
                          for p in range(self.num_pairs)) if self.search_low else zeros
            prune_t = tuple(trial.suggest_categorical(f"prune_threshold_p{p}", list(self.prune_threshold_choices))
                            for p in range(self.num_pairs)) if self.search_prune else zeros
        strategy = self.strategy
        if self.search_strategy:
            strategy = trial.suggest_categorical("strategy", list(self.strategy_choices))
        return DesignPoint(high, low, weight, low_r, prune_r, self.mode, low_t, prune_t, strategy)

    # -- vectorized sampling for the simulator screen -------------------------------------------
    def sample_ratios(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """`n` random ratio-mode points as arrays: low/prune (n, pairs), bits (n,)."""
        choices = np.asarray(self.act_bit_choices)
        if self.search_act_bits:
            ab = rng.choice(choices, size=(n, 2))
            high, low = ab.max(axis=1), ab.min(axis=1)
        else:
            high, low = np.full(n, self.high_act_bits), np.full(n, self.low_act_bits)
        weight = rng.choice(np.asarray(self.weight_bit_choices), size=n) if self.search_weight_bits \
            else np.full(n, self.weight_bits)
        low_r = rng.choice(np.asarray(self.ratio_choices), size=(n, self.num_pairs)) if self.search_low \
            else np.zeros((n, self.num_pairs))
        prune_r = rng.choice(np.asarray(self.prune_choices), size=(n, self.num_pairs)) if self.search_prune \
            else np.zeros((n, self.num_pairs))
        return {"high_act_bits": high, "low_act_bits": low, "weight_bits": weight,
                "low_ratios": low_r, "prune_ratios": prune_r}

    def most_aggressive(self) -> DesignPoint:
        """The corner with the most low-bit/pruned windows at the lowest bits (largest nominal speedup)."""
        high = min(self.act_bit_choices) if self.search_act_bits else self.high_act_bits
        low = min(self.act_bit_choices) if self.search_act_bits else self.low_act_bits
        weight = min(self.weight_bit_choices) if self.search_weight_bits else self.weight_bits
        low_r = (max(self.ratio_choices) if self.search_low else 0.0,) * self.num_pairs
        prune_r = (max(self.prune_choices) if self.search_prune else 0.0,) * self.num_pairs
        return DesignPoint(high, low, weight, low_r, prune_r, "ratio", (), (), self.strategy)
