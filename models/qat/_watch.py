"""Per-step weight bookkeeping of a QAT/SAQA run: the oscillation counter (both methods) and OFQ's
confidence-guided annealing (CGA, `train.method: ofq`, the last `cga_fraction` of the steps).

Layers are the quantized weights of every converted block: `qkv`, `proj`, `fc1`, `fc2`; with QKR the
query-key product `qk` (W_q,hᵀ W_k,h, what is quantized) and the value rows `v` replace `qkv`.

CGA as OFQ's `cga.py` does it, every step: after backward, the weights CGA freezes (`_ofq.cga_frozen`,
recomputed from the current weights) get a zero gradient and their values are saved; after the
optimizer step they are put back (AdamW's momentum and weight decay would still move them). Like
their code, CGA covers v, proj, fc1, fc2 (qkv without QKR), not the query and key weights.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from mixaq.models._ofq import OscillationTracker, cga_frozen, qk_product, statsq_codes

__all__ = ["WeightWatch"]


class WeightWatch:
    """Oscillation counting for every run; CGA from step `cga_start` on (None: never)."""

    def __init__(self, model: nn.Module, cga_start: int | None = None, boundary_range: float = 0.005) -> None:
        from mixaq.models._two_branch import converted_blocks

        self.cga_start, self.boundary_range = cga_start, boundary_range
        self.tracker = OscillationTracker()
        self.layers: list[tuple[str, Any, str]] = []  # (short name, block, layer)
        for _, block in converted_blocks(model):
            qkr = block.quant_config is not None and block.quant_config.qkr
            for layer in (("qk", "v") if qkr else ("qkv",)) + ("proj", "fc1", "fc2"):
                self.layers.append((f"b{block.mixaq_index}.{layer}", block, layer))
        self._saved: list[tuple[torch.Tensor, slice, torch.Tensor, torch.Tensor]] = []  # (param, rows, mask, values)
        self._frozen_share = 0.0

    @staticmethod
    def _weight(block: Any, layer: str) -> tuple[torch.Tensor, slice]:
        """(parameter, its rows that form `layer`)."""
        if layer in ("qk", "v", "qkv"):
            dim = block.attn.qkv.weight.shape[1]
            rows = {"qk": slice(0, 2 * dim), "v": slice(2 * dim, 3 * dim), "qkv": slice(None)}[layer]
            return block.attn.qkv.weight, rows
        module = block.attn.proj if layer == "proj" else getattr(block.mlp, layer)
        return module.weight, slice(None)

    def _codes(self, block: Any, layer: str) -> torch.Tensor | None:
        fq = block.weight_quant["qkv" if layer in ("qk", "v") else layer]
        if fq.bits is None:
            return None
        weight, rows = self._weight(block, layer)
        if layer == "qk":
            return statsq_codes(qk_product(weight.detach(), block.attn.num_heads), fq.bits)
        if layer == "v":
            return statsq_codes(weight.detach()[rows], fq.bits)
        return fq.weight_codes(weight.detach())

    def cga_active(self, step: int) -> bool:
        return self.cga_start is not None and step >= self.cga_start

    def before_step(self, step: int) -> None:
        """After backward (`step` = optimizer steps done): CGA zeroes the frozen weights' gradients."""
        self._saved = []
        if not self.cga_active(step):
            return
        frozen = total = 0
        for _, block, layer in self.layers:
            if layer == "qk":
                continue
            weight, rows = self._weight(block, layer)
            bits = block.weight_quant["qkv" if layer == "v" else layer].bits
            if bits is None or weight.grad is None:
                continue
            mask = cga_frozen(weight.detach()[rows], bits, self.boundary_range)
            weight.grad[rows] = weight.grad[rows].masked_fill(mask, 0.0)
            self._saved.append((weight, rows, mask, weight.detach()[rows].clone()))
            frozen += int(mask.sum())
            total += mask.numel()
        self._frozen_share = frozen / max(1, total)

    def after_step(self, step: int) -> dict[str, float]:
        """After the optimizer step: restore frozen weights, count code changes; numbers to log."""
        with torch.no_grad():
            for weight, rows, mask, values in self._saved:
                weight[rows] = torch.where(mask, values, weight[rows])
        self._saved = []
        out: dict[str, float] = {}
        switched = oscillated = 0
        for name, block, layer in self.layers:
            codes = self._codes(block, layer)
            if codes is None:
                continue
            s, o = self.tracker.update(name, codes)
            switched += s
            oscillated += o
            out[f"osc.{name}"] = float(o)
        out["switched"], out["oscillated"] = float(switched), float(oscillated)
        if self.cga_active(step - 1):
            out["cga_frozen_share"] = self._frozen_share
        return out

    def summary(self) -> dict[str, dict[str, int]]:
        """Run totals per layer: switched, oscillated, weights, steps (counted steps)."""
        return {name: dict(total) for name, total in self.tracker.totals.items()}
