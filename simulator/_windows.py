"""Window geometry of a Swin block: the one rule for window size, shift, padding and window count.

Used by the simulator's workload (`SwinArch.block_windows`), by the model's window importance and
by the two-branch partition (`mixaq.models`), so all three count and place windows identically.
Two semantics exist in the wild:

- ``"timm"`` (timm's `SwinTransformerBlock`, the classification Swin): per axis, where the feature
  map the block was *built* for is no larger than the target window, the window shrinks to the map
  and the shift is switched off (`_calc_window_shift`). At run time the block rolls by −shift,
  then zero-pads bottom/right to a window multiple, then partitions.
- ``"official"`` (the Swin detection backbone of Swin-Transformer-Object-Detection / mmdet): the
  full window always, every odd block shifts by ⌊ws/2⌋ whatever the map size; the block zero-pads
  bottom/right first, then rolls, and builds its shift mask on the padded map.

Either way a map of H×W tokens holds ⌈H/wh⌉·⌈W/ww⌉ windows of wh·ww (padded) tokens.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

from mixaq.core._errors import MixaqError

__all__ = ["WINDOW_SEMANTICS", "WindowGeometry", "block_window", "window_geometry"]

WINDOW_SEMANTICS = ("timm", "official")


def _pair(value: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    try:
        pair = (operator.index(value),) * 2 if not hasattr(value, "__len__") else tuple(map(operator.index, value))
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(isinstance(v, bool) for v in (value if hasattr(value, "__len__") else (value,))):
        raise MixaqError(f"window geometry: {what} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _check_semantics(semantics: str) -> None:
    if semantics not in WINDOW_SEMANTICS:
        raise MixaqError(f"window semantics must be one of {', '.join(WINDOW_SEMANTICS)}, got {semantics!r}")


@dataclass(frozen=True)
class WindowGeometry:
    """How one block partitions an H×W token map: window and shift per axis, padding, grid."""

    feature_hw: tuple[int, int]  # tokens of the map the block runs on
    window_hw: tuple[int, int]  # window side per axis (tokens)
    shift_hw: tuple[int, int]  # cyclic shift per axis (0: off on that axis)
    semantics: str = "timm"  # "timm": roll, then pad | "official": pad, then roll

    def __post_init__(self) -> None:
        _check_semantics(self.semantics)
        for name in ("feature_hw", "window_hw", "shift_hw"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        if min(self.feature_hw) <= 0 or min(self.window_hw) <= 0:
            raise MixaqError(f"window geometry: sizes must be positive, got map {self.feature_hw}, window {self.window_hw}")
        if any(not 0 <= s < w for s, w in zip(self.shift_hw, self.window_hw)):
            raise MixaqError(f"window geometry: shift {self.shift_hw} must lie in [0, window) per axis, window {self.window_hw}")

    @property
    def pad_hw(self) -> tuple[int, int]:
        """Zero rows / columns added at the bottom / right to reach a window multiple."""
        return tuple((w - f % w) % w for f, w in zip(self.feature_hw, self.window_hw))  # type: ignore[return-value]

    @property
    def padded_hw(self) -> tuple[int, int]:
        return tuple(f + p for f, p in zip(self.feature_hw, self.pad_hw))  # type: ignore[return-value]

    @property
    def grid_hw(self) -> tuple[int, int]:
        """Windows along H and W."""
        return tuple(p // w for p, w in zip(self.padded_hw, self.window_hw))  # type: ignore[return-value]

    @property
    def n_windows(self) -> int:
        return self.grid_hw[0] * self.grid_hw[1]

    @property
    def window_tokens(self) -> int:
        return self.window_hw[0] * self.window_hw[1]

    @property
    def padded_tokens(self) -> int:
        return self.n_windows * self.window_tokens

    @property
    def shifted(self) -> bool:
        return any(self.shift_hw)

    @property
    def pad_before_roll(self) -> bool:
        return self.semantics == "official"


def block_window(build_hw: tuple[int, int], window_size: int | tuple[int, int], shift_size: int | tuple[int, int],
                 semantics: str = "timm") -> tuple[tuple[int, int], tuple[int, int]]:
    """(window_hw, shift_hw) a block uses, given the map it was built for and its target window/shift.

    timm: per axis, a map side ≤ the target window shrinks the window to that side and switches the
    shift off (timm's `_calc_window_shift` without `always_partition`). official: the targets as given.
    """
    _check_semantics(semantics)
    window, shift, build = _pair(window_size, "window_size"), _pair(shift_size, "shift_size"), _pair(build_hw, "build_hw")
    if semantics == "official":
        return window, shift
    window_hw = tuple(min(r, w) for r, w in zip(build, window))
    shift_hw = tuple(0 if r <= w else s for r, w, s in zip(build, window, shift))
    return window_hw, shift_hw  # type: ignore[return-value]


def window_geometry(feature_hw: tuple[int, int], window_size: int | tuple[int, int], shifted: bool,
                    semantics: str = "timm", build_hw: tuple[int, int] | None = None) -> WindowGeometry:
    """Geometry of a regular (`shifted=False`) or shifted Swin block with target `window_size` on a
    `feature_hw` token map; the block was built for `build_hw` (default: the same map). Swin shifts
    odd blocks by half the target window."""
    window = _pair(window_size, "window_size")
    target_shift = (window[0] // 2, window[1] // 2) if shifted else (0, 0)
    window_hw, shift_hw = block_window(feature_hw if build_hw is None else build_hw, window, target_shift, semantics)
    return WindowGeometry(feature_hw, window_hw, shift_hw, semantics)
