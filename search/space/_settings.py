"""What defines a study (stored with it, so every worker that joins must agree)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from mixaq.core._errors import MixaqError
from mixaq.core._util import json_ready

from mixaq.simulator._cost import SPEEDUP_KINDS
from mixaq.search.space._objectives import Objective, default_objectives, objective_list, parse_objectives, x_column
from mixaq.search.space._space import DesignPoint, SearchSpace

__all__ = ["SweepSettings", "SAMPLERS", "config_key", "SETTINGS_ATTR", "CONTEXT_ATTR", "CACHE_PREFIX",
           "BASELINE_PREFIX"]

SAMPLERS: tuple[str, ...] = ("nsga2", "tpe")
SETTINGS_ATTR = "mixaq.settings"
CONTEXT_ATTR = "mixaq.context"
CACHE_PREFIX = "mixaq.map."
BASELINE_PREFIX = "mixaq.baseline."


@dataclass(frozen=True)
class SweepSettings:
    """Objectives, constraints, sampler and screen of one study; `space` is the design space."""

    space: SearchSpace
    spec: str = "bitfusion"
    cost: str = "bops"
    sampler: str = "nsga2"
    seed: int = 0
    population_size: int = 10
    max_map_drop: float | None = None
    min_speedup: float | None = None
    # Cheap-before-expensive: skip configurations the simulator + measured neighbours show cannot
    # reach the front (assumes mAP does not rise when more windows go low-bit; see docs/search.md).
    screen: bool = True
    screen_tolerance: float = 0.005
    # Front points that get random-, reversed-window and pruning-only baselines at the same ratios.
    baseline_points: int = 2
    extra: Mapping[str, Any] = field(default_factory=dict)
    # What is optimized (search.space._objectives names); empty = ("map", "speedup_<cost>").
    objectives: tuple[str, ...] = ()
    # Co-exploration: a hardware space (`search.hardware._hw_space.HardwareSpace.to_dict()`) searched jointly
    # with the precision configuration; None = the one spec `spec`.
    hw_space: Mapping[str, Any] | None = None
    # Multi-fidelity accuracy: image counts, ascending (the last = every evaluated image); a proposal
    # goes to the next count only if its bootstrap interval could still reach the front.
    fidelity: tuple[int, ...] = ()
    fidelity_bootstrap: int = 100  # resamples of the subset's images for the interval

    def __post_init__(self) -> None:
        if self.cost not in SPEEDUP_KINDS:
            raise MixaqError(f"--cost must be one of {', '.join(SPEEDUP_KINDS)}, got {self.cost!r}")
        names = parse_objectives(self.objectives) if self.objectives else default_objectives(self.cost)
        object.__setattr__(self, "objectives", names)
        object.__setattr__(self, "fidelity", tuple(int(n) for n in self.fidelity))
        f = self.fidelity
        if f and (len(f) < 2 or any(n < 1 for n in f) or any(a >= b for a, b in zip(f, f[1:]))):
            raise MixaqError(f"--fidelity needs two or more increasing image counts (e.g. 64,500), got "
                             f"{','.join(map(str, f))}")
        if self.fidelity_bootstrap < 10:
            raise MixaqError(f"fidelity_bootstrap must be >= 10 resamples, got {self.fidelity_bootstrap}")
        if self.hw_space is not None and not any(o.source != "accuracy" for o in self.objective_specs):
            raise MixaqError("--hw-space needs at least one hardware-dependent objective (e.g. latency_ms, area_mm2)")
        if self.sampler not in SAMPLERS:
            raise MixaqError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.population_size < 2:
            raise MixaqError(f"--population must be at least 2, got {self.population_size}")
        if self.max_map_drop is not None and not 0.0 <= self.max_map_drop <= 1.0:
            raise MixaqError(f"--max-map-drop is on COCOeval's 0-1 scale, got {self.max_map_drop}")
        if self.min_speedup is not None and self.min_speedup <= 0:
            raise MixaqError(f"--min-speedup must be positive, got {self.min_speedup}")
        if self.screen_tolerance < 0:
            raise MixaqError(f"--screen-tolerance must be >= 0, got {self.screen_tolerance}")
        if self.baseline_points < 0:
            raise MixaqError(f"--baseline-points must be >= 0, got {self.baseline_points}")

    @property
    def objective_specs(self) -> tuple[Objective, ...]:
        return objective_list(self.objectives)

    @property
    def accuracy_column(self) -> str:
        """The accuracy metric the mAP constraint and the baselines' reference read: the first
        accuracy objective (box `ap` when none is optimized)."""
        return next((o.column for o in self.objective_specs if o.source == "accuracy"), "ap")

    @property
    def x_column(self) -> str:
        """The column fronts are sorted by and plots draw across (`search.space._objectives.x_column`)."""
        return x_column(self.objective_specs, self.cost)

    @property
    def is_default_objectives(self) -> bool:
        return self.objectives == default_objectives(self.cost)

    def to_dict(self) -> dict[str, Any]:
        return json_ready(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepSettings":
        kw = dict(data)
        kw["space"] = SearchSpace.from_dict(kw["space"])
        return cls(**kw)

    def differences(self, other: "SweepSettings") -> list[str]:
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in mine if mine[k] != theirs.get(k)]


def config_key(point: DesignPoint, low_fraction: Any = None, pruned_fraction: Any = None) -> str:
    """Cache key of what the model actually runs: ratio points by their per-block window fractions
    (two ratios that floor to the same window counts are one configuration), knobs that cannot
    matter (low bits with no low windows, strategy with nothing demoted) normalized away."""
    strategy, seed = point.strategy, (point.seed if point.strategy == "random" else None)
    low_bits = point.low_act_bits
    if point.mode == "ratio":
        low = [round(float(v), 6) for v in low_fraction]
        pruned = [round(float(v), 6) for v in pruned_fraction]
        if not any(low):
            low_bits = point.high_act_bits
        if not any(low) and not any(pruned):
            strategy, seed = "importance", None
        body: dict[str, Any] = {"low": low, "pruned": pruned}
    else:
        body = {"low_t": list(point.low_thresholds), "prune_t": list(point.prune_thresholds)}
    payload = {"bits": [point.high_act_bits, low_bits, point.weight_bits], "mode": point.mode,
               "strategy": strategy, "seed": seed, **body}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
