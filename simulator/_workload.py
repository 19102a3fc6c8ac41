"""Every op of a Swin backbone, split into window-branch row groups, as flat numpy tables.

The workload is built once per (arch, image) and parametrised by *shares*: each op row scales
either its row count M or its instance count by one column of a share matrix (A, n_shares) that
`share_matrix` derives from window fractions. Column 0 is the constant 1 (unbranched ops); the
others are per-block high/low window fractions, per-block "branches exist" indicators
(gather/scatter) and per-stage "importance needed" indicators. Changing the assignment therefore
never rebuilds the op list, which is what makes batch costing a few array operations.

Token counts follow timm's `SwinTransformerBlock`: LayerNorms and the MLP run on the H·W real
tokens, QKV / attention / proj on window-padded tokens (nW·ws²). A branch holding a fraction f
of the windows gets f of each (padding is assumed spread evenly over the windows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mixaq.simulator._arch import SwinArch
from mixaq.core._errors import MixaqError

__all__ = ["OPS_PER_ELEMENT", "OpTable", "RowGroup", "Workload", "build_workload", "share_matrix"]

# Vector-unit element operations per element (a modelling choice, see docs/simulator.md):
# LayerNorm mean/var/normalise/scale/shift = 5 (fvcore's count too); softmax max/sub/exp/sum/div
# = 5 (the relative-position bias and shift mask adds are folded into it); GELU (tanh form) = 4;
# window gather + scatter = 1 copy each; token magnitude |x| accumulate = 1; window L2 norm
# square + accumulate = 2; ranking windows = log2(nW) compare-swaps per window.
OPS_PER_ELEMENT = {"layernorm": 5, "softmax": 5, "gelu": 4, "copy": 1, "magnitude": 1, "l2": 2, "rank": 1}
BRANCHES = ("high", "low")
_ACT_SOURCE = {"high": 0, "low": 1, "all": 0}  # unbranched ops run at the high activation width


@dataclass(frozen=True)
class OpTable:
    """Rows of one unit (the array or the vector unit); arrays are (rows,)."""

    order: np.ndarray  # position in execution order across both tables
    stage: np.ndarray
    block: np.ndarray  # global block index, -1 for stage-level ops
    op: tuple[str, ...]
    branch: tuple[str, ...]  # high | low | all
    m: np.ndarray  # GEMM rows (vector: rows) at share 1
    n: np.ndarray  # GEMM output columns (vector: elements per row)
    k: np.ndarray  # GEMM reduction (vector: ops per element)
    count: np.ndarray  # independent instances at share 1 (heads x windows for attention)
    share: np.ndarray  # column of the share matrix that scales this row
    share_scales_count: np.ndarray  # bool: the share scales `count` (else `m`)
    act_source: np.ndarray  # 0: high activation bits, 1: low
    weight_is_act: np.ndarray  # bool: the second operand is an activation (QK^T, AV)
    # Vector rows: elements each row reads and writes (its traffic, `_vector.py`); 0 for GEMM rows.
    read_width: np.ndarray
    write_width: np.ndarray

    def __len__(self) -> int:
        return len(self.op)


@dataclass(frozen=True)
class RowGroup:
    """Rows whose cost depends on the same few share columns (one block, or one stage's own ops).

    Batch costing evaluates each group once per distinct (shares, bits) key, not once per
    assignment: a search over ratios on a grid repeats the same keys thousands of times.
    """

    share_cols: np.ndarray  # share-matrix columns the group's rows read
    low_col: int  # column of the block's low-bit fraction (-1: the group never runs low-bit)
    gemm_rows: np.ndarray  # indices into Workload.gemm
    gemm_key_pos: np.ndarray  # position of each row's share column within share_cols
    vector_rows: np.ndarray
    vector_key_pos: np.ndarray


@dataclass(frozen=True)
class Workload:
    arch: SwinArch
    image_hw: tuple[int, int]
    gemm: OpTable
    vector: OpTable
    n_shares: int
    groups: tuple[RowGroup, ...]


def _row_groups(arch: SwinArch, gemm: OpTable, vector: OpTable) -> tuple[RowGroup, ...]:
    cols = _share_columns(arch)
    group_of = lambda t: np.where(t.block >= 0, t.block, arch.num_blocks + t.stage)  # noqa: E731
    g_gemm, g_vec = group_of(gemm), group_of(vector)
    groups = []
    for g in range(arch.num_blocks + arch.num_stages):
        gemm_rows, vector_rows = np.flatnonzero(g_gemm == g), np.flatnonzero(g_vec == g)
        share_cols = np.unique(np.concatenate([gemm.share[gemm_rows], vector.share[vector_rows]]))
        runs_low = np.any(gemm.act_source[gemm_rows] == 1)
        groups.append(RowGroup(
            share_cols=share_cols,
            low_col=cols["low"] + g if runs_low else -1,
            gemm_rows=gemm_rows,
            gemm_key_pos=np.searchsorted(share_cols, gemm.share[gemm_rows]),
            vector_rows=vector_rows,
            vector_key_pos=np.searchsorted(share_cols, vector.share[vector_rows]),
        ))
    return tuple(groups)


class _Builder:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {"gemm": [], "vector": []}
        self.position = 0

    def add(self, unit, stage, block, op, branch, m, n, k, count=1.0, share=0, scales_count=False, weight_is_act=False,
            io=None):
        """`io`: (read, write) elements per row of a vector op; default (n, n), a map like LayerNorm."""
        read, write = (0.0, 0.0) if unit == "gemm" else (io or (n, n))
        self.rows[unit].append(dict(order=self.position, stage=stage, block=block, op=op, branch=branch, m=m, n=n, k=k,
                                    count=count, share=share, share_scales_count=scales_count,
                                    act_source=_ACT_SOURCE[branch], weight_is_act=weight_is_act,
                                    read_width=read, write_width=write))
        self.position += 1

    def table(self, unit: str) -> OpTable:
        rows = self.rows[unit]
        col = lambda key, dtype: np.array([r[key] for r in rows], dtype=dtype)  # noqa: E731
        return OpTable(
            order=col("order", np.int64), stage=col("stage", np.int64), block=col("block", np.int64),
            op=tuple(r["op"] for r in rows), branch=tuple(r["branch"] for r in rows),
            m=col("m", np.float64), n=col("n", np.float64), k=col("k", np.float64), count=col("count", np.float64),
            share=col("share", np.int64), share_scales_count=col("share_scales_count", bool),
            act_source=col("act_source", np.int64), weight_is_act=col("weight_is_act", bool),
            read_width=col("read_width", np.float64), write_width=col("write_width", np.float64),
        )


def _share_columns(arch: SwinArch) -> dict[str, int]:
    nb, ns = arch.num_blocks, arch.num_stages
    return {"one": 0, "high": 1, "low": 1 + nb, "mixed_kept": 1 + 2 * nb, "stage_mixed": 1 + 3 * nb,
            "partition_mixed": 1 + 3 * nb + ns, "count": 1 + 3 * nb + 3 * ns}


@lru_cache(maxsize=64)
def build_workload(arch: SwinArch, image_hw: tuple[int, int]) -> Workload:
    """All ops of `arch` (patch embed, blocks, patch merging, MixA-Q overheads) at `image_hw`."""
    if len(image_hw) != 2 or min(image_hw) <= 0:
        raise MixaqError(f"image size must be two positive integers, got {image_hw}")
    cols = _share_columns(arch)
    b = _Builder()
    lnorm, ops = OPS_PER_ELEMENT["layernorm"], OPS_PER_ELEMENT
    block = 0
    for stage in range(arch.num_stages):
        dim, heads = arch.stage_dim(stage), arch.num_heads[stage]
        h, w = arch.stage_grid(stage, image_hw)
        tokens = h * w
        if stage == 0:
            patch_k = arch.in_chans * arch.patch_size**2
            b.add("gemm", stage, -1, "patch_embed", "all", tokens, dim, patch_k)
            b.add("vector", stage, -1, "patch_norm", "all", tokens, dim, lnorm)
        else:
            prev = arch.stage_dim(stage - 1)
            b.add("vector", stage, -1, "merge_norm", "all", tokens, 4 * prev, lnorm)
            b.add("gemm", stage, -1, "merge", "all", tokens, dim, 4 * prev)
        # One rule places windows everywhere (`_windows.py`): per-axis window sides, so a map
        # smaller than the window on one side gets non-square windows as in the model.
        regular = arch.block_windows(stage, False, image_hw)
        shifted = arch.block_windows(stage, True, image_hw)
        n_win, win_tokens, padded = regular.n_windows, regular.window_tokens, regular.padded_tokens
        # MixA-Q overhead: token magnitudes once per stage, window L2 + ranking per partition in use
        # (regular windows for even blocks, shifted for odd), only when some block mixes. Where the
        # shift is off (a map no larger than the window) both parities share one partition.
        # Traffic: the token magnitudes read the stage input and write one value per token; ranking
        # reads the (window-padded) magnitudes and writes one window index per window.
        b.add("vector", stage, -1, "importance_tokens", "all", tokens, dim, ops["magnitude"],
              share=cols["stage_mixed"] + stage, io=(dim, 1))
        rank_work = ops["l2"] * padded + ops["rank"] * n_win * max(1, math.ceil(math.log2(max(n_win, 2))))
        if arch.depths[stage] > 1 and shifted.shift_hw != regular.shift_hw:
            for part, name in enumerate(("importance_regular", "importance_shifted")):
                b.add("vector", stage, -1, name, "all", 1, rank_work, 1, share=cols["partition_mixed"] + 2 * stage + part,
                      io=(padded, n_win))
        else:
            b.add("vector", stage, -1, "importance_regular", "all", 1, rank_work, 1, share=cols["stage_mixed"] + stage,
                  io=(padded, n_win))
        hidden = int(dim * arch.mlp_ratio)
        head_dim = dim // heads
        for _ in range(arch.depths[stage]):
            # Gather and scatter each read and write every kept token once.
            b.add("vector", stage, block, "gather_scatter", "all", padded, dim, 2 * ops["copy"],
                  share=cols["mixed_kept"] + block, io=(2 * dim, 2 * dim))
            branch_rows = []
            for branch in BRANCHES:
                s = cols[branch] + block
                attn = dict(count=n_win * heads, share=s, scales_count=True)
                branch_rows.append([
                    ("vector", "norm1", tokens, dim, lnorm, {"share": s}),
                    ("gemm", "qkv", padded, 3 * dim, dim, {"share": s}),
                    ("gemm", "qk", win_tokens, win_tokens, head_dim, dict(attn, weight_is_act=True)),
                    ("vector", "softmax", win_tokens, win_tokens, ops["softmax"], attn),
                    ("gemm", "av", win_tokens, head_dim, win_tokens, dict(attn, weight_is_act=True)),
                    ("gemm", "proj", padded, dim, dim, {"share": s}),
                    ("vector", "norm2", tokens, dim, lnorm, {"share": s}),
                    ("gemm", "fc1", tokens, hidden, dim, {"share": s}),
                    ("vector", "gelu", tokens, hidden, ops["gelu"], {"share": s}),
                    ("gemm", "fc2", tokens, dim, hidden, {"share": s}),
                ])
            # Interleave: each op's high row, then its low row.
            for pair in zip(*branch_rows):
                for branch, (unit, op, m, n, k, extra) in zip(BRANCHES, pair):
                    b.add(unit, stage, block, op, branch, m, n, k, **extra)
            block += 1
    gemm, vector = b.table("gemm"), b.table("vector")
    return Workload(arch, tuple(image_hw), gemm, vector, cols["count"], _row_groups(arch, gemm, vector))


def share_matrix(workload: Workload, low_fraction: np.ndarray, pruned_fraction: np.ndarray) -> np.ndarray:
    """(A, n_shares) share values for window fractions of shape (A, num_blocks)."""
    arch = workload.arch
    low = np.asarray(low_fraction, dtype=np.float64)
    pruned = np.asarray(pruned_fraction, dtype=np.float64)
    n_assign, nb, ns = low.shape[0], arch.num_blocks, arch.num_stages
    out = np.empty((n_assign, workload.n_shares))
    cols = _share_columns(arch)
    out[:, 0] = 1.0
    out[:, cols["high"]:cols["high"] + nb] = 1.0 - low - pruned
    out[:, cols["low"]:cols["low"] + nb] = low
    mixed = (low > 0) | (pruned > 0)  # (A, nb)
    out[:, cols["mixed_kept"]:cols["mixed_kept"] + nb] = mixed * (1.0 - pruned)
    stage_of_block = np.repeat(np.arange(ns), arch.depths)
    in_stage = np.arange(nb) - np.repeat(np.cumsum((0,) + tuple(arch.depths[:-1])), arch.depths)
    stage_mixed = np.zeros((n_assign, ns))
    part_mixed = np.zeros((n_assign, ns, 2))
    for stage in range(ns):
        here = stage_of_block == stage
        stage_mixed[:, stage] = mixed[:, here].any(axis=1)
        for parity in (0, 1):
            part_mixed[:, stage, parity] = mixed[:, here & (in_stage % 2 == parity)].any(axis=1)
    out[:, cols["stage_mixed"]:cols["stage_mixed"] + ns] = stage_mixed
    out[:, cols["partition_mixed"]:cols["partition_mixed"] + 2 * ns] = part_mixed.reshape(n_assign, 2 * ns)
    return out
