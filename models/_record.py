"""What the converted model actually ran (windows per branch, per block and image) and its cost view."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch.nn as nn

from mixaq.models._config import QuantConfig
from mixaq.models._two_branch import converted_blocks
from mixaq.simulator import MixaqError, WindowAssignment

__all__ = ["WindowRecord", "get_record", "reset_record", "assignment_from_record"]


@dataclass(frozen=True, eq=False)
class WindowRecord:
    """Windows per image and block that ran high-bit, low-bit or were pruned.

    `counts` is (n_images, n_blocks, 3) int64 in (high, low, pruned) order; blocks in execution order
    (the simulator's block order), images in forward order. Only eval-mode forwards outside
    `calibrating` are recorded.
    """

    counts: np.ndarray
    block_names: tuple[str, ...]

    @property
    def n_images(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_blocks(self) -> int:
        return int(self.counts.shape[1])

    @property
    def n_high(self) -> np.ndarray:
        return self.counts[..., 0]

    @property
    def n_low(self) -> np.ndarray:
        return self.counts[..., 1]

    @property
    def n_pruned(self) -> np.ndarray:
        return self.counts[..., 2]

    @property
    def n_windows(self) -> np.ndarray:
        """(n_images, n_blocks) windows of each block for each image."""
        return self.counts.sum(-1)

    def low_fraction(self) -> np.ndarray:
        """(n_blocks,) share of each block's windows that ran low-bit, averaged over images."""
        self._require_images()
        return (self.n_low / self.n_windows).mean(0)

    def pruned_fraction(self) -> np.ndarray:
        """(n_blocks,) share of each block's windows that were pruned, averaged over images."""
        self._require_images()
        return (self.n_pruned / self.n_windows).mean(0)

    def to_frame(self) -> pd.DataFrame:
        """One row per (image, block): image, block, name, high, low, pruned."""
        images, blocks = np.meshgrid(np.arange(self.n_images), np.arange(self.n_blocks), indexing="ij")
        return pd.DataFrame(
            {
                "image": images.ravel(),
                "block": blocks.ravel(),
                "name": np.asarray(self.block_names, dtype=object)[blocks.ravel()],
                "high": self.n_high.ravel(),
                "low": self.n_low.ravel(),
                "pruned": self.n_pruned.ravel(),
            }
        )

    def _require_images(self) -> None:
        if self.n_images == 0:
            raise MixaqError("window record is empty: run eval-mode forwards after reset_record(model)")


def get_record(module: nn.Module) -> WindowRecord:
    """The window record of every converted block in `module` since the last `reset_record`."""
    blocks = converted_blocks(module)
    if not blocks:
        raise MixaqError(f"get_record: no converted Swin blocks in {type(module).__name__} (call models.convert_swin first)")
    per_block = []
    for _name, block in blocks:
        if block._records:
            per_block.append(np.concatenate([r.cpu().numpy() for r in block._records]).astype(np.int64))
        else:
            per_block.append(np.zeros((0, 3), dtype=np.int64))
    images = {len(c) for c in per_block}
    if len(images) != 1:
        raise MixaqError(
            f"get_record: blocks recorded different numbers of images {sorted(images)} "
            "(a forward stopped early?); call reset_record(model) and rerun"
        )
    return WindowRecord(np.stack(per_block, axis=1), tuple(name for name, _ in blocks))


def reset_record(module: nn.Module) -> None:
    """Forget what every converted block in `module` recorded."""
    for _, block in converted_blocks(module):
        block._records.clear()


def assignment_from_record(record: WindowRecord, quant: QuantConfig) -> WindowAssignment:
    """The simulator workload of what the model ran: per-block low/pruned fractions (image means)
    with `quant`'s bit widths."""
    return WindowAssignment(
        tuple(record.low_fraction().tolist()),
        tuple(record.pruned_fraction().tolist()),
        high_act_bits=quant.high_act_bits,
        low_act_bits=quant.low_act_bits,
        weight_bits=quant.weight_bits,
        source="record",
    )
