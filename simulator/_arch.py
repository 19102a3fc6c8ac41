"""Swin architecture description and the ratio -> window-count rule shared by model and simulator."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from mixaq.core._errors import MixaqError
from mixaq.core._util import dataclass_from_mapping
from mixaq.simulator._windows import WINDOW_SEMANTICS, WindowGeometry, window_geometry

__all__ = ["SwinArch", "SWIN_ARCHS", "get_arch", "window_counts", "WindowAssignment"]

# Guards floor(ratio * nW) against 0.3 * 10 == 2.9999999999999996.
_EPS = 1e-9


def _require_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise MixaqError(f"arch: {name}: expected an integer, got {value!r}")


@dataclass(frozen=True)
class SwinArch:
    """A Swin backbone as timm builds it (`timm.models.swin_transformer.SwinTransformer` kwargs)."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int = 7
    mlp_ratio: float = 4.0
    patch_size: int = 4
    in_chans: int = 3
    # How blocks place windows (see `_windows.py`): "timm" (timm's SwinTransformer, the default)
    # or "official" (the Swin detection backbone: full windows, always shifted, pad then roll).
    window_semantics: str = "timm"

    def __post_init__(self) -> None:
        if self.window_semantics not in WINDOW_SEMANTICS:
            raise MixaqError(f"arch: window_semantics must be one of {', '.join(WINDOW_SEMANTICS)}, "
                             f"got {self.window_semantics!r}")
        # Types first: an arch file with `embed_dim: big` must say so, not fail comparing str and int.
        for name in ("embed_dim", "window_size", "patch_size", "in_chans"):
            _require_int(name, getattr(self, name))
        for name in ("depths", "num_heads"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
                raise MixaqError(f"arch: {name}: expected a non-empty list of integers, got {value!r}")
            for v in value:
                _require_int(name, v)
            object.__setattr__(self, name, tuple(int(v) for v in value))
        if isinstance(self.mlp_ratio, bool) or not isinstance(self.mlp_ratio, (int, float)) \
                or not np.isfinite(self.mlp_ratio) or self.mlp_ratio <= 0:
            raise MixaqError(f"arch: mlp_ratio: expected a positive number, got {self.mlp_ratio!r}")
        if len(self.depths) != len(self.num_heads):
            raise MixaqError(f"arch: depths {self.depths} and num_heads {self.num_heads} differ in length")
        for name in ("embed_dim", "window_size", "patch_size", "in_chans"):
            if getattr(self, name) <= 0:
                raise MixaqError(f"arch: {name} must be positive, got {getattr(self, name)}")
        if any(d <= 0 for d in self.depths) or any(h <= 0 for h in self.num_heads):
            raise MixaqError("arch: depths and num_heads must be positive")
        for stage, heads in enumerate(self.num_heads):
            if self.stage_dim(stage) % heads:
                raise MixaqError(f"arch: stage {stage} dim {self.stage_dim(stage)} not divisible by {heads} heads")

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def num_blocks(self) -> int:
        return sum(self.depths)

    def stage_dim(self, stage: int) -> int:
        return self.embed_dim * 2**stage

    def blocks(self) -> list[tuple[int, int]]:
        """(stage, block-in-stage) for every block, in execution order."""
        return [(s, b) for s, d in enumerate(self.depths) for b in range(d)]

    def block_pairs(self) -> list[tuple[int, tuple[int, ...]]]:
        """Knob layout: (stage, global block indices) per pair of consecutive blocks in a stage.

        An odd trailing block forms a pair of its own. Swin-T (2, 2, 6, 2) has 6 pairs.
        """
        pairs, start = [], 0
        for stage, depth in enumerate(self.depths):
            for b in range(0, depth, 2):
                pairs.append((stage, tuple(range(start + b, start + min(b + 2, depth)))))
            start += depth
        return pairs

    @property
    def num_pairs(self) -> int:
        return len(self.block_pairs())

    def pair_of_block(self) -> np.ndarray:
        """(num_blocks,) index of the pair each block belongs to."""
        out = np.empty(self.num_blocks, dtype=np.int64)
        for p, (_, blocks) in enumerate(self.block_pairs()):
            out[list(blocks)] = p
        return out

    def stage_grid(self, stage: int, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Token grid (H, W) of a stage for an input image, as timm computes it (ceil on padding)."""
        h = math.ceil(image_hw[0] / self.patch_size)
        w = math.ceil(image_hw[1] / self.patch_size)
        for _ in range(stage):
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return h, w

    def block_windows(self, stage: int, shifted: bool, image_hw: tuple[int, int]) -> WindowGeometry:
        """Window geometry of a regular (`shifted=False`, even) or shifted (odd) block of a stage,
        for a model built for and run at `image_hw` (the one rule in `_windows.py`)."""
        return window_geometry(self.stage_grid(stage, image_hw), self.window_size, shifted, self.window_semantics)

    def windows_per_block(self, image_hw: tuple[int, int]) -> np.ndarray:
        """(num_blocks,) number of attention windows of each block for one image."""
        counts = [self.block_windows(s, b % 2 == 1, image_hw).n_windows for s, b in self.blocks()]
        return np.asarray(counts, dtype=np.int64)

    def timm_kwargs(self) -> dict[str, Any]:
        return dict(
            embed_dim=self.embed_dim,
            depths=tuple(self.depths),
            num_heads=tuple(self.num_heads),
            window_size=self.window_size,
            mlp_ratio=self.mlp_ratio,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
        )


# Variants as kwargs dicts, as timm registers them.
SWIN_ARCHS: dict[str, SwinArch] = {
    "swin_t": SwinArch(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "swin_s": SwinArch(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "swin_b": SwinArch(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    # Small variants for the embedded default detector and tests.
    "swin_micro": SwinArch(embed_dim=32, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4),
    "swin_nano": SwinArch(embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4),
}


def get_arch(arch: str | SwinArch | Mapping[str, Any]) -> SwinArch:
    """A preset name, a `SwinArch`, or a mapping of `SwinArch` fields."""
    if isinstance(arch, SwinArch):
        return arch
    if isinstance(arch, str):
        if arch not in SWIN_ARCHS:
            raise MixaqError(f"unknown arch {arch!r} (choose from {', '.join(SWIN_ARCHS)})")
        return SWIN_ARCHS[arch]
    # SwinArch checks the types itself and makes depths/num_heads tuples.
    return dataclass_from_mapping(SwinArch, dict(arch), "arch")


def window_counts(n_windows, low_ratio, prune_ratio=0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_high, n_low, n_pruned) windows for ratios of `n_windows`; broadcasts over arrays.

    The least important `prune_ratio` are pruned, the next `low_ratio` go low-bit, the rest high.
    """
    n = np.asarray(n_windows, dtype=np.int64)
    low = np.asarray(low_ratio, dtype=np.float64)
    prune = np.asarray(prune_ratio, dtype=np.float64)
    ok_low, ok_prune = (low >= 0) & (low <= 1), (prune >= 0) & (prune <= 1)  # NaN fails both
    if not (np.all(ok_low) and np.all(ok_prune)):
        bad = np.concatenate([np.ravel(low)[~np.ravel(ok_low)], np.ravel(prune)[~np.ravel(ok_prune)]])
        raise MixaqError(f"ratios must lie in [0, 1], got {bad[0]:g}")
    n_pruned = np.floor(prune * n + _EPS).astype(np.int64)
    n_low = np.minimum(np.floor(low * n + _EPS).astype(np.int64), n - n_pruned)
    return n - n_pruned - n_low, n_low, n_pruned


def _check_bits(name: str, bits: int | None) -> None:
    if bits is not None and not (isinstance(bits, (int, np.integer)) and 1 <= bits <= 32):
        raise MixaqError(f"{name} must be an integer in 1..32 or None (float), got {bits!r}")


@dataclass(frozen=True)
class WindowAssignment:
    """Which share of each block's windows runs low-bit or is pruned, and at what bit widths.

    `None` bits mean float (not costable on an integer accelerator).
    """

    low_fraction: tuple[float, ...]
    pruned_fraction: tuple[float, ...]
    high_act_bits: int | None = 8
    low_act_bits: int | None = 4
    weight_bits: int | None = 4
    source: str = field(default="ratios", compare=False)

    def __post_init__(self) -> None:
        if len(self.low_fraction) != len(self.pruned_fraction):
            raise MixaqError("low_fraction and pruned_fraction must have one entry per block")
        low, pruned = np.asarray(self.low_fraction), np.asarray(self.pruned_fraction)
        if np.any(low < 0) or np.any(pruned < 0) or np.any(low + pruned > 1 + 1e-9):
            raise MixaqError("window fractions must be >= 0 and low + pruned <= 1 per block")
        _check_bits("high_act_bits", self.high_act_bits)
        _check_bits("low_act_bits", self.low_act_bits)
        _check_bits("weight_bits", self.weight_bits)

    @property
    def high_fraction(self) -> np.ndarray:
        return 1.0 - np.asarray(self.low_fraction) - np.asarray(self.pruned_fraction)

    @classmethod
    def uniform(cls, arch: SwinArch, act_bits: int | None = 8, weight_bits: int | None = 4) -> "WindowAssignment":
        zeros = (0.0,) * arch.num_blocks
        return cls(zeros, zeros, act_bits, act_bits, weight_bits, source="uniform")

    @classmethod
    def from_pair_ratios(
        cls,
        arch: SwinArch,
        image_hw: tuple[int, int],
        low_ratios: Sequence[float] | float,
        prune_ratios: Sequence[float] | float = 0.0,
        high_act_bits: int | None = 8,
        low_act_bits: int | None = 4,
        weight_bits: int | None = 4,
    ) -> "WindowAssignment":
        """Per-pair ratios -> exact per-block fractions via `window_counts` (what the model runs)."""
        pair = arch.pair_of_block()
        if np.ndim(low_ratios) and len(low_ratios) != arch.num_pairs:
            raise MixaqError(f"expected {arch.num_pairs} low ratios (one per block pair), got {len(low_ratios)}")
        if np.ndim(prune_ratios) and len(prune_ratios) != arch.num_pairs:
            raise MixaqError(f"expected {arch.num_pairs} prune ratios (one per block pair), got {len(prune_ratios)}")
        low = np.broadcast_to(np.asarray(low_ratios, dtype=np.float64), (arch.num_pairs,))
        prune = np.broadcast_to(np.asarray(prune_ratios, dtype=np.float64), (arch.num_pairs,))
        n = arch.windows_per_block(image_hw)
        _, n_low, n_pruned = window_counts(n, low[pair], prune[pair])
        return cls(
            tuple((n_low / n).tolist()),
            tuple((n_pruned / n).tolist()),
            high_act_bits,
            low_act_bits,
            weight_bits,
        )
