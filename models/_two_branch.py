"""Two-Branch Swin block: timm's `SwinTransformerBlock`, converted in place.

The whole block runs in window space: the residual input is rolled, padded and partitioned exactly
as the block partitions the normalised input (`partition_windows`, the simulator's window rule:
timm's order by default, the official backbone's when `window_semantics = "official"`), each
branch gathers its windows and runs LN -> W-MSA -> residual -> LN -> MLP -> residual on them, and the results are scattered back.
The MLP is token-wise, so running it on a window's tokens routes every token through the branch of
the window that holds it in this block's (shifted) grid; reversing the partition undoes the roll.
Pruned windows are copied through unchanged. Weights (qkv, proj, fc1, fc2, relative position bias)
stay timm's one tensor; each branch has its own activation quantizers and LayerNorm copies.
With RepQ-ViT PTQ (`QuantConfig.repq`) the post-LN tensors run reparameterized (`_repq.ChannelFold`):
each branch's LN copy and linear bias carry its fold, the folded weight W·r is shared.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath
from timm.models.swin_transformer import SwinTransformerBlock

from mixaq.models._config import ACT_TARGETS, REPQ_OBSERVERS, MixConfig, QuantConfig
from mixaq.models._importance import (
    HIGH,
    LOW,
    assign_labels,
    label_counts,
    ratio_counts,
    selection_scores,
    threshold_counts,
    token_magnitude,
    window_importance,
    window_ranks,
)
from mixaq.models._quant import _GLOBAL_BATCH, FakeQuant
from mixaq.models._repq import ChannelFold
from mixaq.models._windows import partition_windows, reverse_windows
from mixaq.simulator import MixaqError
from mixaq.simulator._windows import WindowGeometry
from mixaq.models._config import REPQ

__all__ = ["TwoBranchSwinBlock", "convert_swin", "set_quant", "set_mix", "calibrating", "converted_blocks"]

BRANCHES = ("high", "low")
# RepQ-ViT folds these post-LayerNorm targets: target -> (LayerNorm of the high branch, linear).
FOLDED_TARGETS = {"qkv_in": ("norm1", "qkv"), "fc1_in": ("norm2", "fc1")}
_CACHE_LIMIT = 16


class _MixState:
    """One `MixConfig` resolved to per-pair tuples, shared by all blocks of a model."""

    def __init__(self, config: MixConfig, num_pairs: int) -> None:
        self.config = config
        self.low_ratios = config.per_pair("low_ratios", num_pairs)
        self.prune_ratios = config.per_pair("prune_ratios", num_pairs)
        self.low_thresholds = config.per_pair("low_thresholds", num_pairs)
        self.prune_thresholds = config.per_pair("prune_thresholds", num_pairs)
        self.generator = torch.Generator().manual_seed(config.seed)


class _StageContext:
    """Per-forward state of one stage: its input's token magnitudes (computed by the stage's first
    block) and, per window grid (regular / shifted), the window importance and demotion ranks."""

    def __init__(self) -> None:
        self.magnitude: torch.Tensor | None = None
        self.grids: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def start(self, x: torch.Tensor) -> None:
        self.magnitude = token_magnitude(x)  # (B, H, W)
        self.grids = {}

    def matches(self, x: torch.Tensor) -> bool:
        return self.magnitude is not None and self.magnitude.shape == x.shape[:3]

    def grid(self, geometry: WindowGeometry, state: _MixState) -> tuple[torch.Tensor, torch.Tensor]:
        key = (geometry.window_hw, geometry.shift_hw, geometry.semantics)
        if key not in self.grids:
            importance = window_importance(self.magnitude, *key)  # (B, nW)
            scores = selection_scores(importance, state.config.strategy, state.generator)
            self.grids[key] = (importance, window_ranks(scores))
        return self.grids[key]


def _per_image_keep(drop_path: nn.Module, batch: int, like: torch.Tensor) -> torch.Tensor | None:
    """timm's per-sample stochastic depth, drawn per image (B,) so every window of an image agrees."""
    if not isinstance(drop_path, DropPath) or not drop_path.training or drop_path.drop_prob == 0.0:
        return None
    keep_prob = 1.0 - drop_path.drop_prob
    window = _GLOBAL_BATCH[-1]  # a training step's own generator: draw the global batch's, keep this process's
    if window is not None and window[3] is not None and window[1] >= window[0] + batch:
        keep = (torch.rand(window[1], generator=window[3], dtype=torch.float64) < keep_prob)[window[0]:window[0] + batch]
        keep = keep.to(device=like.device, dtype=like.dtype)
    else:
        keep = like.new_empty(batch).bernoulli_(keep_prob)
    if keep_prob > 0.0 and drop_path.scale_by_keep:
        keep.div_(keep_prob)
    return keep


class _Windows:
    """Per-window extras of one forward; `select(rows)` restricts them to gathered windows."""

    def __init__(self, n_windows: int, mask, valid, keep1, keep2) -> None:  # noqa: ANN001 (tensors or None)
        self.n_windows = n_windows
        self.mask, self.valid, self.keep1, self.keep2 = mask, valid, keep1, keep2  # (nW,N,N) (nW,N,1) (B,) (B,)

    def select(self, rows: torch.Tensor | None) -> tuple:
        """(mask, valid, keep1, keep2) for windows `rows` (flat B*nW indices), or all windows if None.

        Masks come back with a leading dim that divides the number of windows (timm's convention);
        keeps come back per window, (n, 1, 1).
        """
        nW = self.n_windows
        if rows is None:
            keep = [None if k is None else k.repeat_interleave(nW).view(-1, 1, 1) for k in (self.keep1, self.keep2)]
            return (self.mask, self.valid, *keep)
        in_image = rows % nW
        mask = None if self.mask is None else self.mask[in_image]
        valid = None if self.valid is None else self.valid[in_image]
        keep = [None if k is None else k[rows // nW].view(-1, 1, 1) for k in (self.keep1, self.keep2)]
        return (mask, valid, *keep)


class TwoBranchSwinBlock(SwinTransformerBlock):
    """A timm `SwinTransformerBlock` whose windows run in a high-bit or a low-bit branch (or skip).

    Never constructed directly: `convert_swin` swaps the class of existing blocks and adds
    `norm1_low`, `norm2_low`, `act_quant[branch][target]` and `weight_quant[linear]`; timm's own
    `norm1`/`norm2` serve the high branch, so a float checkpoint's keys are unchanged.
    """

    def _setup_two_branch(self) -> None:
        device = self.norm1.weight.device
        self.norm1_low = copy.deepcopy(self.norm1)
        self.norm2_low = copy.deepcopy(self.norm2)
        self.act_quant = nn.ModuleDict(
            {b: nn.ModuleDict({t: FakeQuant() for t in ACT_TARGETS}) for b in BRANCHES}
        ).to(device)
        linears = {"qkv": self.attn.qkv, "proj": self.attn.proj, "fc1": self.mlp.fc1, "fc2": self.mlp.fc2}
        self.weight_quant = nn.ModuleDict({k: FakeQuant(m.out_features) for k, m in linears.items()}).to(device)
        self.quant_config: QuantConfig | None = None
        self.repq: nn.ModuleDict | None = None  # target -> ChannelFold, only with RepQ-ViT PTQ
        self._fold_feed: tuple[str, ...] = ("high",)
        self.mixaq_index = 0
        self.mixaq_pair = 0
        self.mixaq_stage = 0
        self.first_in_stage = True
        self._stage_context = _StageContext()
        self._mix_state: _MixState | None = None
        self._calibrating = False
        self._records: list[torch.Tensor] = []
        self._mask_cache: dict[tuple, torch.Tensor | None] = {}
        # How this block places windows (`mixaq.simulator._windows`): "timm" rolls then pads;
        # "official" (the Swin detection backbone) pads then rolls. A backbone that needs the
        # official order sets the flag on its converted blocks; the window and shift sizes are
        # the block's own (`window_size`, `shift_size`).
        self.window_semantics = getattr(self, "window_semantics", "timm")

    # -- per-forward geometry ---------------------------------------------------------------------
    def _cached(self, key: tuple, make) -> torch.Tensor | None:  # noqa: ANN001 (a zero-arg callable)
        if key not in self._mask_cache:
            if len(self._mask_cache) >= _CACHE_LIMIT:
                self._mask_cache.clear()
            self._mask_cache[key] = make()
        return self._mask_cache[key]

    def _geometry(self, H: int, W: int) -> WindowGeometry:
        return WindowGeometry((H, W), self.window_size, self.shift_size, self.window_semantics)

    def _shift_mask(self, geometry: WindowGeometry, x: torch.Tensor) -> torch.Tensor | None:
        """(nW, N, N) shift mask; both semantics build it on the padded map with timm's regions."""
        if not geometry.shifted:
            return None
        if not self.dynamic_mask:
            return self.attn_mask
        key = ("mask", geometry)
        Hp, Wp = geometry.padded_hw
        return self._cached(key + (x.device, x.dtype), lambda: self.get_attn_mask(x.new_empty(1, Hp, Wp, 1)))

    def _valid_tokens(self, geometry: WindowGeometry, x: torch.Tensor) -> torch.Tensor | None:
        """(nW, N, 1) 1 for real tokens, 0 for padding: the block pads the *normalised* input with zeros."""
        if not any(geometry.pad_hw):
            return None
        key = ("valid", geometry, x.device, x.dtype)
        return self._cached(key, lambda: partition_windows(x.new_ones(1, *geometry.feature_hw, 1), geometry))

    def _window_labels(self, x: torch.Tensor, geometry: WindowGeometry) -> torch.Tensor | None:
        """(B, nW) HIGH/LOW/PRUNED per window of this block's grid; None = all high (no mix set)."""
        state = self._mix_state
        if state is None:
            return None
        context = self._stage_context
        if self.first_in_stage or not context.matches(x):
            context.start(x)
        importance, ranks = context.grid(geometry, state)
        n_windows = geometry.n_windows
        if importance.shape[1] != n_windows:
            raise MixaqError(f"block {self.mixaq_index}: importance grid has {importance.shape[1]} windows, block {n_windows}")
        pair = self.mixaq_pair
        if state.config.mode == "ratio":
            n_pruned, n_low = ratio_counts(n_windows, state.low_ratios[pair], state.prune_ratios[pair])
        else:
            n_pruned, n_low = threshold_counts(importance, state.low_thresholds[pair], state.prune_thresholds[pair])
        return assign_labels(ranks, n_pruned, n_low)

    # -- one branch on a set of windows -----------------------------------------------------------
    def _norm_linear(self, branch: str, target: str, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """LN -> quantizer -> linear (qkv or fc1) of `branch` on tokens x (n, N, C).

        `valid` (nW, N, 1) zeroes padded tokens after the LN, as timm pads. With a RepQ fold this is
        the reparameterized form: folded LN affine, per-tensor quantizer, W·r, bias + Q(W·r)·b (a
        padded token gets the fold's image of zero, -b).
        """
        norm_name, linear_name = FOLDED_TARGETS[target]
        norm = getattr(self, norm_name if branch == "high" else f"{norm_name}_low")
        linear = self.attn.qkv if linear_name == "qkv" else self.mlp.fc1
        quant, weight_quant = self.act_quant[branch][target], self.weight_quant[linear_name]
        fold = self.repq[target] if self.repq is not None and target in self.repq else None
        folded = fold is not None and fold.is_active and not self._calibrating
        h = fold.norm(norm, branch, x) if folded else norm(x)
        if valid is not None:
            n, N, C = h.shape
            if folded:
                pad = fold.pad_value(branch)
                h = ((h - pad).view(-1, valid.shape[0], N, C) * valid).view(n, N, C) + pad
            else:
                h = (h.view(-1, valid.shape[0], N, C) * valid).view(n, N, C)
        if fold is not None and self._calibrating:
            # RepQ-ViT calibration: the fold observes the float LN output (once per window).
            if branch in self._fold_feed:
                fold.observe(h)
            return F.linear(h, weight_quant(linear.weight), linear.bias)
        if not folded:
            return F.linear(quant(h, not torch.is_grad_enabled()), weight_quant(linear.weight), linear.bias)
        weight = weight_quant(fold.weight(linear.weight))
        return F.linear(quant(h, not torch.is_grad_enabled()), weight, fold.bias(branch, linear.bias, weight))

    def _qk_weight(self) -> torch.Tensor:
        """(nH, C, C) quantized per-head W_q,hᵀ W_k,h (OFQ's QKR; StatsQ over its nH·C rows).
        Cached for inference while the qkv weight is unchanged."""
        from mixaq.models._ofq import qk_product, statsq_quantize

        w, heads = self.attn.qkv.weight, self.attn.num_heads
        bits = self.weight_quant["qkv"].bits
        grad = torch.is_grad_enabled() and w.requires_grad
        key = ("qk", w.data_ptr(), w._version, w.device, w.dtype, bits)
        if not grad and getattr(self, "_qk_cache", (None,))[0] == key:
            return self._qk_cache[1]
        product = qk_product(w if grad else w.detach(), heads)
        qk = (product if bits is None else statsq_quantize(product, bits)).view(heads, w.shape[1], w.shape[1])
        if not grad:
            self._qk_cache = (key, qk)
        return qk

    def _qkr_scores(self, branch: str, xw: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """OFQ's query-key reparameterized attention logits (n, nH, N, N) and values (n, nH, N, d).

        Quantized input x̂ (target `qkv_in`), v = Q(W_v) x̂ + b_v, and per head
        scores_ij = x̂_i · Q_k(Q(W_qk,h) x̂_j) · d^-1/2, where `Q_k` is the branch's `k` quantizer (the
        `q` target has no tensor of its own here: the query side is x̂ itself). The query bias enters as
        the per-key term x̂_j · (W_k,hᵀ b_q,h) (float; OFQ's code drops b_q and b_k when it splits qkv),
        so the float reparameterized block computes timm's function; b_k cancels in the softmax.
        """
        attn, aq = self.attn, self.act_quant[branch]
        ip = not torch.is_grad_enabled()
        n, N, C = xw.shape
        heads = attn.num_heads
        h = (self.norm1 if branch == "high" else self.norm1_low)(xw)
        if valid is not None:
            h = (h.view(-1, valid.shape[0], N, C) * valid).view(n, N, C)
        x = aq["qkv_in"](h, ip)
        w, b = attn.qkv.weight, attn.qkv.bias
        v = F.linear(x, self.weight_quant["qkv"](w)[2 * C:], None if b is None else b[2 * C:])
        v = v.view(n, N, heads, -1).transpose(1, 2)  # (n, nH, N, d)
        keys = torch.einsum("hdc,bnc->bhdn", self._qk_weight(), x)  # (n, nH, C, N): W_qk,h x̂_j
        scores = torch.einsum("bic,bhcj->bhij", x, aq["k"](keys, ip)) * attn.scale
        if b is not None:
            u = torch.einsum("hdc,hd->hc", w[C:2 * C].view(heads, -1, C), b[:C].view(heads, -1))  # (nH, C)
            scores = scores + (x @ (u.t() * attn.scale)).transpose(1, 2).unsqueeze(2)  # + x̂_j · u_h / √d, per key j
        return scores, v

    def _branch(self, branch: str, xw: torch.Tensor, bias: torch.Tensor, extras: tuple) -> torch.Tensor:
        """LN -> W-MSA -> residual -> LN -> MLP -> residual on windows xw (n, N, C)."""
        mask, valid, keep1, keep2 = extras
        aq, wq = self.act_quant[branch], self.weight_quant
        attn, mlp = self.attn, self.mlp
        n, N, C = xw.shape

        # Inference may quantize in place: every quantized tensor below is a fresh intermediate.
        ip = not torch.is_grad_enabled()
        if self.quant_config is not None and self.quant_config.qkr:
            scores, v = self._qkr_scores(branch, xw, valid)
        else:
            qkv = self._norm_linear(branch, "qkv_in", xw, valid)
            q, k, v = qkv.reshape(n, N, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (n, nH, N, d)
            scores = aq["q"](q * attn.scale, ip) @ aq["k"](k, ip).transpose(-2, -1)  # (n, nH, N, N)
        scores = scores + bias
        if mask is not None:
            heads = attn.num_heads
            scores = (scores.view(-1, mask.shape[0], heads, N, N) + mask.unsqueeze(1)).view(n, heads, N, N)
        probs = attn.attn_drop(attn.softmax(scores))
        out = (aq["attn"](probs, ip) @ aq["v"](v, ip)).transpose(1, 2).reshape(n, N, -1)
        out = attn.proj_drop(F.linear(aq["proj_in"](out, ip), wq["proj"](attn.proj.weight), attn.proj.bias))
        x = xw + (out if keep1 is None else out * keep1)

        h = mlp.drop1(mlp.act(self._norm_linear(branch, "fc1_in", x)))
        h = mlp.drop2(F.linear(aq["fc2_in"](mlp.norm(h), ip), wq["fc2"](mlp.fc2.weight), mlp.fc2.bias))
        return x + (h if keep2 is None else h * keep2)

    def _routed(self, xw: torch.Tensor, labels: torch.Tensor | None, bias: torch.Tensor, windows: _Windows) -> torch.Tensor:
        if labels is None:
            return self._branch("high", xw, bias, windows.select(None))
        flat = labels.reshape(-1)
        n_high, n_low, n_pruned = torch.bincount(flat.long(), minlength=3).tolist()
        if n_pruned == 0 and (n_high == 0 or n_low == 0):
            # Every window in one branch: no gather/scatter, the uniform model's exact computation.
            return self._branch("high" if n_low == 0 else "low", xw, bias, windows.select(None))
        out = xw.clone()  # pruned windows keep their input
        for branch, label, count in (("high", HIGH, n_high), ("low", LOW, n_low)):
            if count:
                rows = (flat == label).nonzero().squeeze(1)
                out.index_copy_(0, rows, self._branch(branch, xw.index_select(0, rows), bias, windows.select(rows)))
        return out

    def _calibration(self, x: torch.Tensor, xw: torch.Tensor, bias: torch.Tensor, windows: _Windows,
                     geometry: WindowGeometry) -> torch.Tensor:
        """Observers see float activations. `routed`: the mix routes windows as at inference, so
        each branch observes its own windows. `shared` (or no mix set): both branches see every
        window and the high branch's output goes on, so one calibration serves every mix."""
        if self.quant_config is not None and self.quant_config.calibration == "routed":
            labels = self._window_labels(x, geometry)
            if labels is not None:
                self._fold_feed = BRANCHES  # each branch's windows feed the shared channel ranges
                return self._routed(xw, labels, bias, windows)
        self._fold_feed = ("high",)  # both branches see the same windows: count them once
        extras = windows.select(None)
        self._branch("low", xw, bias, extras)
        return self._branch("high", xw, bias, extras)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C), as timm's block but window-routed."""
        B, H, W, _ = x.shape
        geometry = self._geometry(H, W)
        xw = partition_windows(x, geometry)  # (B*nW, N, C)
        n_windows = geometry.n_windows
        windows = _Windows(
            n_windows,
            self._shift_mask(geometry, x),
            self._valid_tokens(geometry, x),
            _per_image_keep(self.drop_path1, B, x),
            _per_image_keep(self.drop_path2, B, x),
        )
        bias = self.attn._get_rel_pos_bias()  # (1, nH, N, N), shared by both branches
        if self._calibrating:
            out = self._calibration(x, xw, bias, windows, geometry)
        else:
            labels = self._window_labels(x, geometry)
            out = self._routed(xw, labels, bias, windows)
            if not self.training:
                self._record(labels, B, n_windows, x.device)
        return reverse_windows(out, geometry)

    def _record(self, labels: torch.Tensor | None, batch: int, n_windows: int, device: torch.device) -> None:
        if labels is None:
            counts = torch.tensor([[n_windows, 0, 0]], device=device).expand(batch, 3)
        else:
            counts = label_counts(labels)
        self._records.append(counts.detach())


def converted_blocks(module: nn.Module) -> list[tuple[str, TwoBranchSwinBlock]]:
    """(name, block) of every converted block in `module`, in conversion (execution) order."""
    found = [(n, m) for n, m in module.named_modules() if isinstance(m, TwoBranchSwinBlock)]
    return sorted(found, key=lambda item: item[1].mixaq_index)


def _require_blocks(module: nn.Module, what: str) -> list[TwoBranchSwinBlock]:
    blocks = [b for _, b in converted_blocks(module)]
    if not blocks:
        raise MixaqError(f"{what}: no converted Swin blocks in {type(module).__name__} (call models.convert_swin first)")
    return blocks


def convert_swin(module: nn.Module, quant: QuantConfig | None = None) -> nn.Module:
    """Convert in place every timm `SwinTransformerBlock` inside `module`; returns `module`.

    Blocks sharing a parent container form a stage (timm's `stage.blocks`); within it, blocks
    (0, 1), (2, 3), ... form the knob pairs, numbered across stages in module order, which matches
    `SwinArch.block_pairs()`. `quant=None` means float branches. Converting twice is harmless.
    """
    stages: dict[str, list[SwinTransformerBlock]] = {}
    for name, sub in module.named_modules():
        if isinstance(sub, SwinTransformerBlock):
            stages.setdefault(name.rpartition(".")[0], []).append(sub)
    if not stages:
        raise MixaqError(f"convert_swin: no timm SwinTransformerBlock found in {type(module).__name__}")
    index, pair = 0, 0
    for stage, blocks in enumerate(stages.values()):
        context = _StageContext()
        for position, block in enumerate(blocks):
            if not isinstance(block, TwoBranchSwinBlock):
                block.__class__ = TwoBranchSwinBlock
                block._setup_two_branch()
            block.mixaq_index, block.mixaq_stage = index, stage
            block.mixaq_pair = pair + position // 2
            block.first_in_stage = position == 0
            block._stage_context = context
            index += 1
        pair += (len(blocks) + 1) // 2
    set_quant(module, QuantConfig.float() if quant is None else quant)
    return module


def set_quant(module: nn.Module, quant: QuantConfig) -> nn.Module:
    """Apply `quant` to every converted block. Changing an activation quantizer's setting forgets
    its calibration; an unchanged one keeps it."""
    if not isinstance(quant, QuantConfig):
        raise MixaqError(f"set_quant: expected a QuantConfig, got {type(quant).__name__}")
    observers = {t: quant.observer for t in ACT_TARGETS}
    if quant.repq:  # RepQ-ViT's rules on the folded and the softmax targets, the named rule elsewhere
        observers = {t: REPQ if t in FOLDED_TARGETS or t == "attn" else REPQ_OBSERVERS[quant.observer]
                     for t in ACT_TARGETS}
    for block in _require_blocks(module, "set_quant"):
        for branch, bits in (("high", quant.high_act_bits), ("low", quant.low_act_bits)):
            for target, fq in block.act_quant[branch].items():
                fq.configure(
                    bits if target in quant.targets else None,
                    quant.act_symmetric,
                    observers[target],
                    quant.percentile,
                    quant.learnable,
                    "log_sqrt2" if quant.repq and target == "attn" else "uniform",
                )
        statsq = quant.weight_observer == "statsq"  # OFQ: weight steps from statistics, never learned
        for fq in block.weight_quant.values():
            fq.configure(quant.weight_bits, True, quant.weight_observer, quant.percentile, quant.learnable and not statsq)
        _set_folds(block, quant)
        block.quant_config = quant
    return module


def _fold_bits(quant: QuantConfig, target: str) -> dict[str, int | None]:
    on = target in quant.targets
    return {"high": quant.high_act_bits if on else None, "low": quant.low_act_bits if on else None}


def _set_folds(block: TwoBranchSwinBlock, quant: QuantConfig) -> None:
    """RepQ-ViT folds for the quantized post-LN targets; a fold whose bits change is forgotten with
    both branches' quantizers (their per-tensor steps only mean something with the fold)."""
    wanted = {}
    if quant.repq:
        wanted = {t: _fold_bits(quant, t) for t in FOLDED_TARGETS if any(b is not None for b in _fold_bits(quant, t).values())}
    old = block.repq if block.repq is not None else {}
    folds = {}
    for target, bits in wanted.items():
        fold = old[target] if target in old else None
        if fold is None or getattr(fold, "mixaq_bits", None) != bits:
            linear = block.attn.qkv if FOLDED_TARGETS[target][1] == "qkv" else block.mlp.fc1
            fold = ChannelFold(linear.in_features).to(linear.weight.device, linear.weight.dtype)
            fold.mixaq_bits = bits
            for branch in BRANCHES:
                block.act_quant[branch][target].reset()
        folds[target] = fold
    block.repq = nn.ModuleDict(folds) if folds else None


def _freeze_folds(block: TwoBranchSwinBlock) -> None:
    """End of calibration: per-channel ranges -> shared ratios, per-branch shifts and steps."""
    for target, fold in (block.repq or {}).items():
        bits = fold.mixaq_bits
        quantized = {b: v for b, v in bits.items() if v is not None}
        for branch, (scale, zero_point) in fold.freeze(bits, min(quantized.values())).items():
            fq = block.act_quant[branch][target]
            like = dict(device=fq.scale.device, dtype=fq.scale.dtype)
            fq._set_qparams(torch.tensor([scale], **like), torch.tensor([zero_point], **like))


def set_mix(module: nn.Module, mix: MixConfig | None) -> nn.Module:
    """Route windows by `mix` from the next forward on; None = every window high-bit.

    Also restarts the random strategy's generator from `mix.seed`.
    """
    if mix is not None and not isinstance(mix, MixConfig):
        raise MixaqError(f"set_mix: expected a MixConfig or None, got {type(mix).__name__}")
    blocks = _require_blocks(module, "set_mix")
    state = None if mix is None else _MixState(mix, max(b.mixaq_pair for b in blocks) + 1)
    for block in blocks:
        block._mix_state = state
    return module


@contextlib.contextmanager
def calibrating(module: nn.Module) -> Iterator[nn.Module]:
    """Forwards inside feed the activation observers; leaving freezes scales and zero points.

    Inside, activations stay float and weights are quantized. With `QuantConfig.calibration`
    "routed" and a mix set, windows are routed as the mix says and each branch observes its own
    windows (a branch that receives none stays uncalibrated); otherwise both branches see every
    window, nothing is pruned, and the calibration holds for any later `set_mix`.
    """
    blocks = _require_blocks(module, "calibrating")
    quantizers = [fq for b in blocks for branch in b.act_quant.values() for fq in branch.values()]
    for fq in quantizers:
        fq._reset_stats()
        fq.observing = True
    for block in blocks:
        block._calibrating = True
        for target, fold in (block.repq or {}).items():
            fold.reset()  # observe the original LN output; its quantizers wait for the new fold
            for branch in BRANCHES:
                block.act_quant[branch][target].reset()
    try:
        yield module
    except BaseException:
        for fq in quantizers:
            fq._reset_stats()
        for block in blocks:
            for fold in (block.repq or {}).values():
                fold.reset()
        raise
    else:
        for fq in quantizers:
            fq.freeze()
        for block in blocks:
            _freeze_folds(block)
    finally:
        for fq in quantizers:
            fq.observing = False
        for block in blocks:
            block._calibrating = False
