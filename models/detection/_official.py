"""The Swin detection backbone as the official release and mmdet 3.x compute it, built from timm parts.

Four facts separate it from timm's `SwinTransformer` (measured: with the same weights stock timm
differs by up to 3.25 at 800x1216): the attention input is padded to a window multiple *then*
rolled, the shift mask is built on the padded map, every block keeps its full window and its shift
however small the map (timm shrinks the window and drops the shift where its build-time map is
<= the window), and each output stage has its own LayerNorm (`norm0..3`); the image is padded to
a multiple of the patch size.

The module tree mirrors the official key layout (`patch_embed.proj`, `layers.S.blocks.B.attn.qkv`,
`layers.S.downsample` at the *end* of a stage, `norm{i}`), so an official state dict loads as is;
the blocks are timm `SwinTransformerBlock`s (with `window_semantics = "official"`), so
`models.convert_swin` finds them and the two-branch block follows the same geometry.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Mapping, Sequence

import torch
import torch.nn as nn
from timm.layers import PatchEmbed
from timm.models.swin_transformer import PatchMerging, SwinTransformerBlock, get_relative_position_index

from mixaq.models._windows import partition_windows, reverse_windows
from mixaq.simulator import SwinArch
from mixaq.core._errors import MixaqError
from mixaq.simulator._windows import WindowGeometry

__all__ = ["OfficialSwinBlock", "OfficialSwin", "OFFICIAL", "backbone_from_mmdet3", "infer_backbone_arch",
           "check_relative_position_index"]

OFFICIAL = "official"  # the block attribute `window_semantics` the two-branch block reads


class OfficialSwinBlock(SwinTransformerBlock):
    """timm's block with the official window geometry (pad, then roll; full windows; shift always on)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shifted: bool, mlp_ratio: float) -> None:
        super().__init__(dim, input_resolution=(window_size, window_size), num_heads=num_heads,
                         window_size=window_size, shift_size=window_size // 2 if shifted else 0,
                         always_partition=True, dynamic_mask=True, mlp_ratio=mlp_ratio)
        self.attn.fused_attn = False  # the reference computes softmax(q k^T + bias + mask) explicitly
        self.window_semantics = OFFICIAL  # an instance attribute: survives convert_swin's class swap

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) normalised input -> (B, H, W, C): zero-pad to a window multiple, then roll
        (the simulator's window rule, `official` semantics); shift mask on the padded map."""
        geometry = WindowGeometry(tuple(x.shape[1:3]), self.window_size, self.shift_size, OFFICIAL)
        windows = partition_windows(x, geometry)  # (B*nW, N, C)
        mask = self.get_attn_mask(x.new_empty(1, *geometry.padded_hw, 1)) if geometry.shifted else None  # (nW, N, N)
        return reverse_windows(self.attn(windows, mask=mask), geometry)


class OfficialStage(nn.Module):
    """One stage: its blocks, then (except the last stage) patch merging, as the official `BasicLayer`."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[OfficialSwinBlock(dim, num_heads, window_size, i % 2 == 1, mlp_ratio)
                                      for i in range(depth)])
        # timm's PatchMerging concatenates the 2x2 neighbours in the official order (x00, x10, x01, x11).
        self.downsample = PatchMerging(dim, 2 * dim) if downsample else None


class OfficialSwin(nn.Module):
    """(B, 3, H, W) -> one (B, C_i, ceil(H/4/2^i), ceil(W/4/2^i)) map per output stage."""

    def __init__(self, arch: SwinArch, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        self.arch = replace(arch, window_semantics=OFFICIAL)
        self.out_indices = tuple(range(arch.num_stages)) if out_indices is None else tuple(out_indices)
        self.patch_embed = PatchEmbed(img_size=None, patch_size=arch.patch_size, in_chans=arch.in_chans,
                                      embed_dim=arch.embed_dim, norm_layer=nn.LayerNorm, flatten=False,
                                      output_fmt="NHWC", strict_img_size=False, dynamic_img_pad=True)
        self.layers = nn.ModuleList(
            OfficialStage(arch.stage_dim(i), arch.depths[i], arch.num_heads[i], arch.window_size, arch.mlp_ratio,
                          downsample=i < arch.num_stages - 1)
            for i in range(arch.num_stages)
        )
        for i in self.out_indices:
            self.add_module(f"norm{i}", nn.LayerNorm(arch.stage_dim(i)))

    @property
    def out_channels(self) -> list[int]:
        return [self.arch.stage_dim(i) for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)  # (B, H/4, W/4, C), input padded to the patch size
        outs = []
        for i, stage in enumerate(self.layers):
            x = stage.blocks(x)  # (B, H_i, W_i, C_i)
            if i in self.out_indices:
                outs.append(getattr(self, f"norm{i}")(x).permute(0, 3, 1, 2).contiguous())  # (B, C_i, H_i, W_i)
            if stage.downsample is not None:
                x = stage.downsample(x)  # (B, ceil(H_i/2), ceil(W_i/2), 2 C_i)
        return outs


# -- mmdet >= 2.16 / 3.x backbone keys -> the official layout ----------------------------------------
# mmdet's PatchMerging gathers the 2x2 neighbours with nn.Unfold: channel-major, neighbours in the
# order (x00, x01, x10, x11). The official order is neighbour-major (x00, x10, x01, x11).
_UNFOLD_TO_OFFICIAL = [0, 2, 1, 3]

_MMDET3_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.stages\.", "backbone.layers."),
    (r"\.attn\.w_msa\.", ".attn."),
    (r"\.ffn\.layers\.0\.0\.", ".mlp.fc1."),
    (r"\.ffn\.layers\.1\.", ".mlp.fc2."),
    (r"^backbone\.patch_embed\.projection\.", "backbone.patch_embed.proj."),
)


def _unfold_to_official(t: torch.Tensor) -> torch.Tensor:
    """Patch-merging weight (out, 4C) or norm vector (4C,) from nn.Unfold order to the official order."""
    if t.ndim == 2:
        out, four_c = t.shape
        return t.reshape(out, four_c // 4, 4).transpose(1, 2)[:, _UNFOLD_TO_OFFICIAL, :].reshape(out, four_c)
    return t.reshape(-1, 4).transpose(0, 1)[_UNFOLD_TO_OFFICIAL, :].reshape(-1)


def backbone_from_mmdet3(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An mmdet 3.x detector state dict with its backbone keys in the official layout."""
    out = {}
    for key, value in state.items():
        if key.startswith("backbone."):
            for pattern, repl in _MMDET3_RENAMES:
                key = re.sub(pattern, repl, key)
            if re.search(r"\.downsample\.(reduction\.weight|norm\.(weight|bias))$", key):
                value = _unfold_to_official(value)
        out[key] = value
    return out


def check_relative_position_index(state: Mapping[str, torch.Tensor], where: str) -> None:
    """The official files store each block's relative position index; it must be the standard one."""
    for key, value in state.items():
        if key.endswith("relative_position_index"):
            side = int(round((value.shape[0]) ** 0.5))
            if side * side != value.shape[0] or not torch.equal(value.long(), get_relative_position_index(side, side)):
                raise MixaqError(f"{where}: {key} is not the standard relative position index")


def infer_backbone_arch(state: Mapping[str, torch.Tensor], where: str, prefix: str = "backbone.") -> tuple[SwinArch, tuple[int, ...]]:
    """(SwinArch, out_indices) of an official-layout backbone from its tensor shapes."""
    proj = state.get(f"{prefix}patch_embed.proj.weight")
    if proj is None or proj.ndim != 4:
        raise MixaqError(f"{where}: no Swin patch embedding ({prefix}patch_embed.proj.weight)")
    if f"{prefix}absolute_pos_embed" in state:
        raise MixaqError(f"{where}: Swin with absolute position embedding (ape=True) is not supported")
    embed_dim, in_chans, patch, _ = proj.shape
    depths, heads, windows, ratios = [], [], set(), set()
    pattern = re.compile(rf"^{re.escape(prefix)}layers\.(\d+)\.blocks\.(\d+)\.")
    blocks: dict[int, set[int]] = {}
    for key in state:
        m = pattern.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise MixaqError(f"{where}: no Swin stages {prefix}layers.0.. found")
    for s in range(len(blocks)):
        if sorted(blocks[s]) != list(range(len(blocks[s]))):
            raise MixaqError(f"{where}: stage {s} has gaps in its block numbering")
        depths.append(len(blocks[s]))
        table = state[f"{prefix}layers.{s}.blocks.0.attn.relative_position_bias_table"]
        heads.append(int(table.shape[1]))
        windows.add((int(round(table.shape[0] ** 0.5)) + 1) // 2)
        fc1 = state[f"{prefix}layers.{s}.blocks.0.mlp.fc1.weight"]
        ratios.add(fc1.shape[0] / fc1.shape[1])
    if len(windows) != 1 or len(ratios) != 1:
        raise MixaqError(f"{where}: stages disagree on window size {sorted(windows)} or MLP ratio {sorted(ratios)}")
    arch = SwinArch(embed_dim=int(embed_dim), depths=tuple(depths), num_heads=tuple(heads),
                    window_size=windows.pop(), mlp_ratio=float(ratios.pop()), patch_size=int(patch),
                    in_chans=int(in_chans), window_semantics=OFFICIAL)
    out_indices = tuple(i for i in range(arch.num_stages) if f"{prefix}norm{i}.weight" in state)
    if not out_indices:
        raise MixaqError(f"{where}: the backbone has no output norms ({prefix}norm0..); a classification model?")
    return arch, out_indices
