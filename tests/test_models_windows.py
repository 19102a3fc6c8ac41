"""The model places windows by the simulator's one rule (`simulator/_windows.py`), in both semantics.

- timm: timm's own blocks pick the window and shift the rule predicts, and a converted model
  records exactly `SwinArch.windows_per_block` windows on non-square inputs.
- official (the Swin detection backbone: full windows, always shifted, pad then roll): a converted
  block flagged `window_semantics = "official"` computes the official block's function, written
  out here from its definition, and records ⌈H/ws⌉·⌈W/ws⌉ windows.
"""
from __future__ import annotations

import copy
import math
import types

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from timm.models.swin_transformer import SwinTransformerBlock, window_partition, window_reverse

from mixaq.models import MixConfig, build_swin, convert_swin, get_record, set_mix, window_importance
from mixaq.models._two_branch import converted_blocks
from mixaq.simulator import SwinArch, get_arch
from mixaq.simulator._windows import block_window


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 24), ws=st.integers(1, 9), shifted=st.booleans(),
       always=st.booleans())
def test_timm_blocks_pick_the_window_the_rule_predicts(h, w, ws, shifted, always):
    block = SwinTransformerBlock(dim=8, input_resolution=(h, w), num_heads=1, window_size=ws,
                                 shift_size=ws // 2 if shifted else 0, always_partition=always, dynamic_mask=True)
    semantics = "official" if always else "timm"  # always_partition = the official geometry
    window_hw, shift_hw = block_window((h, w), ws, ws // 2 if shifted else 0, semantics)
    assert (tuple(block.window_size), tuple(block.shift_size)) == (window_hw, shift_hw)


@pytest.mark.parametrize("arch_name, image_hw", [
    ("swin_micro", (32, 160)),  # the case: [20, 20, 5, 5, 3, 3]
    ("swin_micro", (160, 32)),
    ("swin_micro", (44, 100)),  # odd grids, padding and per-axis shrink
    ("swin_nano", (20, 92)),
])
def test_recorded_windows_equal_the_simulator_on_non_square_inputs(arch_name, image_hw):
    torch.manual_seed(0)
    arch = get_arch(arch_name)
    model = convert_swin(build_swin(arch, image_hw, features_only=True).eval())
    set_mix(model, MixConfig(low_ratios=0.5, prune_ratios=0.2, strategy="random"))
    with torch.no_grad():
        model(torch.randn(2, 3, *image_hw))
    record = get_record(model)
    np.testing.assert_array_equal(record.n_windows[0], arch.windows_per_block(image_hw))
    for (_, block), (stage, b) in zip(converted_blocks(model), arch.blocks()):
        g = arch.block_windows(stage, b % 2 == 1, image_hw)
        assert (tuple(block.window_size), tuple(block.shift_size)) == (g.window_hw, g.shift_hw)
    if image_hw == (32, 160):
        assert record.n_windows[0].tolist() == [20, 20, 5, 5, 3, 3]


# -- the official backbone's order: pad, then roll -------------------------------------------------
def _official_mask(Hp: int, Wp: int, ws: int, shift: int) -> torch.Tensor:
    """The official backbone's SW-MSA mask, built on the padded map (BasicLayer.forward)."""
    img_mask = torch.zeros((1, Hp, Wp, 1))
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img_mask[:, hs, wsl, :] = cnt
            cnt += 1
    mask_windows = window_partition(img_mask, (ws, ws)).view(-1, ws * ws)
    attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
    return attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0, 0.0)


def _official_forward(self, x: torch.Tensor) -> torch.Tensor:
    """SwinTransformerBlock.forward of Swin-Transformer-Object-Detection, on timm's modules."""
    B, H, W, C = x.shape
    ws, shift = self.window_size[0], self.shift_size[0]
    shortcut = x
    x = self.norm1(x)
    pad_b, pad_r = (ws - H % ws) % ws, (ws - W % ws) % ws
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = H + pad_b, W + pad_r
    if shift > 0:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        mask = _official_mask(Hp, Wp, ws, shift)
    else:
        mask = None
    windows = window_partition(x, (ws, ws)).view(-1, ws * ws, C)
    x = window_reverse(self.attn(windows, mask=mask).view(-1, ws, ws, C), (ws, ws), Hp, Wp)
    if shift > 0:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    x = shortcut + x[:, :H, :W, :]
    return x + self.mlp(self.norm2(x))


def _official_pair(arch: SwinArch, image_hw):
    """(reference with the official block forward, converted copy flagged official), same weights."""
    torch.manual_seed(3)
    ref = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, features_only=True,
                            img_size=image_hw, strict_img_size=False, always_partition=True,
                            **arch.timm_kwargs()).eval()
    model = convert_swin(copy.deepcopy(ref))
    for _, block in converted_blocks(model):
        block.window_semantics = "official"
    for block in ref.modules():
        if isinstance(block, SwinTransformerBlock):
            block.forward = types.MethodType(_official_forward, block)
    return ref, model


@pytest.mark.parametrize("image_hw, orders_differ", [
    # 32x160 pads only stage 2 (2x10), where the shift mask separates real tokens from padding in
    # either order: the same function. 44x100 pads stage 0 (11x25) so that padding shares a mask
    # region with real tokens: the orders really differ.
    ((32, 160), False),
    ((44, 100), True),
])
def test_official_flag_computes_the_official_block_and_records_its_windows(image_hw, orders_differ):
    official = SwinArch(embed_dim=32, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, window_semantics="official")
    ref, model = _official_pair(official, image_hw)
    x = torch.randn(2, 3, *image_hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref(x)
        got = model(x)
        assert max((a - b).abs().max().item() for a, b in zip(expected, got)) <= 1e-5
        for _, block in converted_blocks(model):
            block.window_semantics = "timm"
        assert (max((a - b).abs().max().item() for a, b in zip(expected, model(x))) > 1e-3) == orders_differ
        for _, block in converted_blocks(model):
            block.window_semantics = "official"
        set_mix(model, MixConfig(low_ratios=0.5, strategy="random"))
        model(x)
    record = get_record(model)
    want = [math.ceil(h / 4) * math.ceil(w / 4) for h, w in
            (official.stage_grid(s, image_hw) for s, _ in official.blocks())]
    np.testing.assert_array_equal(record.n_windows[0], want)
    np.testing.assert_array_equal(record.n_windows[0], official.windows_per_block(image_hw))


def test_official_importance_pads_then_rolls():
    mag = torch.rand(1, 5, 7, generator=torch.Generator().manual_seed(1))
    ws, shift = 4, 2
    padded = F.pad(mag, (0, 1, 0, 3))  # to 8x8, then roll
    rolled = torch.roll(padded, shifts=(-shift, -shift), dims=(1, 2))
    want = torch.stack([rolled[0, i:i + ws, j:j + ws].norm() for i in (0, 4) for j in (0, 4)])
    got = window_importance(mag, (ws, ws), (shift, shift), "official")[0]
    torch.testing.assert_close(got, want)
    assert not torch.allclose(window_importance(mag, (ws, ws), (shift, shift))[0], want)
