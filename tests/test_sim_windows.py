"""The one window rule (`simulator/_windows.py`), torch-free: both semantics against their definitions.

The model side (timm's own blocks, recorded window counts, the official pad-then-roll order) is in
tests/test_models_windows.py.
"""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.simulator import MixaqError, SwinArch, build_workload, get_arch
from mixaq.simulator._windows import WindowGeometry, block_window, window_geometry


def test_swin_micro_non_square_map_gets_per_axis_windows():
    # 32x160 -> stage grids 8x40, 4x20, 2x10 with a window of 4: stage 1 has no room to shift
    # along H, stage 2 shrinks the window to 2 along H (timm's per-axis rule).
    arch = get_arch("swin_micro")
    assert arch.windows_per_block((32, 160)).tolist() == [20, 20, 5, 5, 3, 3]
    assert arch.block_windows(1, True, (32, 160)).shift_hw == (0, 2)
    stage2 = arch.block_windows(2, True, (32, 160))
    assert (stage2.window_hw, stage2.shift_hw, stage2.grid_hw) == ((2, 4), (0, 2), (1, 3))
    wl = build_workload(arch, (32, 160))
    qk = [i for i, op in enumerate(wl.gemm.op) if op == "qk" and wl.gemm.stage[i] == 2]
    assert {(wl.gemm.m[i], wl.gemm.count[i]) for i in qk} == {(8.0, 3.0 * 4)}  # 2x4 windows, 3 windows x 4 heads


def test_official_semantics_never_shrink_or_unshift():
    arch = SwinArch(embed_dim=32, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, window_semantics="official")
    assert arch.windows_per_block((32, 160)).tolist() == [20, 20, 5, 5, 3, 3]
    stage2 = arch.block_windows(2, True, (32, 160))
    assert (stage2.window_hw, stage2.shift_hw, stage2.pad_hw, stage2.pad_before_roll) == ((4, 4), (2, 2), (2, 2), True)
    # Built for the map they run on, both give the same counts; they differ in window shape (so in
    # padded tokens, i.e. attention cost) and in the shift.
    timm_small = window_geometry((3, 9), 4, True)  # H=3 <= 4: window 3 along H, no shift along H
    official_small = window_geometry((3, 9), 4, True, "official")
    assert timm_small.window_hw == (3, 4) and timm_small.shift_hw == (0, 2)
    assert official_small.window_hw == (4, 4) and official_small.shift_hw == (2, 2)
    assert timm_small.n_windows == official_small.n_windows == 3
    assert (timm_small.padded_tokens, official_small.padded_tokens) == (36, 48)


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 200), w=st.integers(1, 200), ws=st.integers(1, 14), shifted=st.booleans())
def test_official_windows_follow_the_definition(h, w, ws, shifted):
    g = window_geometry((h, w), ws, shifted, "official")
    assert g.window_hw == (ws, ws)
    assert g.shift_hw == ((ws // 2, ws // 2) if shifted else (0, 0))
    assert g.n_windows == math.ceil(h / ws) * math.ceil(w / ws)
    assert g.padded_hw == (math.ceil(h / ws) * ws, math.ceil(w / ws) * ws)


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 200), w=st.integers(1, 200), ws=st.integers(1, 14), shifted=st.booleans())
def test_timm_windows_follow_calc_window_shift(h, w, ws, shifted):
    # timm `_calc_window_shift` (always_partition=False) restated per axis; then roll, pad, partition.
    g = window_geometry((h, w), ws, shifted, "timm")
    for side, window, shift in zip((h, w), g.window_hw, g.shift_hw):
        assert window == (side if side <= ws else ws)
        assert shift == (0 if side <= ws or not shifted else ws // 2)
    assert g.n_windows == math.ceil(h / g.window_hw[0]) * math.ceil(w / g.window_hw[1])
    assert g.padded_tokens >= h * w


def test_block_window_uses_the_build_size_not_the_run_size():
    # timm fixes window and shift when the block is built; a larger run-time map keeps them.
    window_hw, shift_hw = block_window((2, 10), 4, 2)
    assert (window_hw, shift_hw) == ((2, 4), (0, 2))
    g = window_geometry((6, 10), 4, True, build_hw=(2, 10))
    assert (g.window_hw, g.shift_hw, g.grid_hw) == ((2, 4), (0, 2), (3, 3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(feature_hw=(0, 4), window_hw=4, shift_hw=0), "positive"),
    (dict(feature_hw=(4, 4), window_hw=4, shift_hw=4), "shift"),
    (dict(feature_hw=(4, 4), window_hw=(4, 4, 4), shift_hw=0), "pair"),
    (dict(feature_hw=(4, 4), window_hw=4, shift_hw=0, semantics="mmdet"), "semantics"),
])
def test_bad_geometry_is_a_one_line_error(kwargs, match):
    with pytest.raises(MixaqError, match=match):
        WindowGeometry(**kwargs)
    with pytest.raises(MixaqError, match="window_semantics"):
        SwinArch(embed_dim=16, depths=(2,), num_heads=(1,), window_semantics="swin")


def test_unshifted_stage_shares_one_importance_partition():
    # swin_micro at 64: stage 2 is 4x4 with window 4, so its odd block does not shift and the
    # model ranks one grid for both blocks (its cache key is the same) -- the cost model too.
    wl = build_workload(get_arch("swin_micro"), (64, 64))
    names = [(wl.vector.stage[i], op) for i, op in enumerate(wl.vector.op) if op.startswith("importance_") and op != "importance_tokens"]
    assert names == [(0, "importance_regular"), (0, "importance_shifted"), (1, "importance_regular"),
                     (1, "importance_shifted"), (2, "importance_regular")]
