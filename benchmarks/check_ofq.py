"""Cross-check mixaq's OFQ pieces against OFQ's own code (a checkout of nbasyl/OFQ).

    git clone https://github.com/nbasyl/OFQ /tmp/OFQ
    MIXAQ_OFQ_SRC=/tmp/OFQ python -m benchmarks.check_ofq [--ofq-root DIR] [--csv out.csv]

Same weights and inputs into both; nothing of theirs is copied here (their modules are imported
from the checkout, and `freeze_outside_boundary_weight_idx` is compiled from their `cga.py` alone,
since importing the training script would parse its command line):

- StatsQ: `src/quantization/quantizer/statsq.py:StatsQuantizer` against `_ofq.statsq_quantize`
  (values and the weight gradient), 2/3/4 bits, on linear weights and a query-key product.
- CGA: their `freeze_outside_boundary_weight_idx` against `_ofq.cga_frozen` (the freeze decision of
  every weight), 2/3/4 bits, boundary ranges 0.003 / 0.005 / 0.01, on weights of which a share is
  placed within the boundary range of a rounding boundary.
- Oscillation counter: their `TrackOscillation` (in statsq.py) against `_ofq.OscillationTracker` on
  the same integer code sequences (oscillations per step).
- QKR attention: their `QAttention_swin_qkreparam` (torchvision-style shifted-window attention)
  against mixaq's converted timm block (`QuantConfig(..., weight_observer="statsq", qkr=True)`),
  regular and shifted windows, W4A4 and W4A2. Their activation quantizers (per-channel LSQ, CUDA-only
  initialisation) are replaced by the block's own calibrated per-tensor quantizers, so what is
  compared is the reparameterized attention itself: StatsQ on W_qk and W_v, the two einsums, the
  relative-position bias and shift mask, softmax, value and projection. Query/key biases are zero
  (their split drops them; mixaq keeps the query bias as a per-key term, see `docs/qat.md`).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
from pathlib import Path

from mixaq.simulator import MixaqError

ENV = "MIXAQ_OFQ_SRC"
STATSQ_PATH = Path("src") / "quantization" / "quantizer" / "statsq.py"
CGA_PATH = Path("cga.py")


def ofq_root(arg: str | None = None) -> Path:
    """The OFQ checkout: `arg`, else $MIXAQ_OFQ_SRC; one-line error when it is not a checkout."""
    text = arg or os.environ.get(ENV)
    if not text:
        raise MixaqError(f"no OFQ checkout: pass --ofq-root or set {ENV} (git clone https://github.com/nbasyl/OFQ)")
    root = Path(text)
    for rel in (STATSQ_PATH, CGA_PATH):
        if not (root / rel).is_file():
            raise MixaqError(f"{root}: {rel} not found (expected a checkout of github.com/nbasyl/OFQ)")
    return root


def load_statsq(root: Path):  # noqa: ANN201 (their module)
    spec = importlib.util.spec_from_file_location("ofq_statsq", root / STATSQ_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cga_freeze(root: Path):  # noqa: ANN201 (their function)
    """`freeze_outside_boundary_weight_idx` compiled from their cga.py (that function only)."""
    import numpy as np
    import torch

    tree = ast.parse((root / CGA_PATH).read_text())
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "freeze_outside_boundary_weight_idx"]
    if not found:
        raise MixaqError(f"{root / CGA_PATH}: freeze_outside_boundary_weight_idx not found")
    namespace = {"torch": torch, "np": np}
    exec(compile(ast.Module(body=found, type_ignores=[]), str(root / CGA_PATH), "exec"), namespace)  # noqa: S102
    return namespace["freeze_outside_boundary_weight_idx"]


def _weights(rows: int, cols: int, seed: int):  # noqa: ANN202
    import torch

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.02
    w[:, :3] *= 8  # a few large weights per row, as trained transformers have
    return w


def check_statsq(mod, seed: int = 0) -> list[dict]:  # noqa: ANN001
    import torch

    from mixaq.models._ofq import qk_product, statsq_codes, statsq_quantize

    rows = []
    cases = {"linear 96x96": _weights(96, 96, seed), "linear 384x96": _weights(384, 96, seed + 1),
             "qk product 3x96x96": qk_product(_weights(288, 96, seed + 2) * 5, 3)}
    for bits in (2, 3, 4):
        for name, w0 in cases.items():
            w_ours = w0.clone().requires_grad_(True)
            w_theirs = w0.clone().requires_grad_(True)
            g = torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed + bits))
            ours = statsq_quantize(w_ours, bits)
            theirs = mod.StatsQuantizer(bits, False)(w_theirs)
            (ours * g).sum().backward()
            (theirs * g).sum().backward()
            rows.append({"check": "StatsQ", "case": f"{name}, {bits} bit", "elements": w0.numel(),
                         "max_abs_diff": float((ours - theirs).detach().abs().max()),
                         "grad_max_abs_diff": float((w_ours.grad - w_theirs.grad).abs().max()),
                         "codes": int(statsq_codes(w0, bits).unique().numel())})
    return rows


def check_cga(freeze, seed: int = 0) -> list[dict]:  # noqa: ANN001
    import torch

    from mixaq.models._ofq import cga_frozen

    rows = []
    for bits in (2, 3, 4):
        for br in (0.003, 0.005, 0.01):
            w = _weights(384, 96, seed + bits)
            # put a quarter of the weights within ±1.5·br of a rounding boundary, so both decisions occur often
            scale = 2 * w.abs().mean(1, keepdim=True)
            n = 2 ** (bits - 1)
            g = torch.Generator().manual_seed(seed + 7)
            pick = torch.rand(w.shape, generator=g) < 0.25
            boundary = torch.randint(-n, n - 1, w.shape, generator=g).float() + 0.5
            before = boundary + (torch.rand(w.shape, generator=g) * 3 - 1.5) * br
            w = torch.where(pick, scale * (before + 0.5) / n, w)
            theirs = freeze(w, bits, boundaryRange=br) > 0.5
            ours = cga_frozen(w, bits, br)
            rows.append({"check": "CGA freeze", "case": f"{bits} bit, boundary range {br}", "elements": w.numel(),
                         "frozen_theirs": int(theirs.sum()), "frozen_ours": int(ours.sum()),
                         "decisions_differing": int((theirs != ours).sum())})
    return rows


def check_oscillation(mod, seed: int = 0, steps: int = 60) -> list[dict]:  # noqa: ANN001
    import torch

    from mixaq.models._ofq import OscillationTracker

    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(-8, 8, (64, 64), generator=g).float()
    theirs, ours = mod.TrackOscillation(momentum=0.01, freeze_threshold=0), OscillationTracker()
    differing = total = 0
    for _ in range(steps):
        theirs(codes)
        _, osc = ours.update("layer", codes)
        differing += int(int(theirs.oscillated_sum) != osc)
        total += osc
        step = torch.randint(-1, 2, codes.shape, generator=g) * (torch.rand(codes.shape, generator=g) < 0.1)
        codes = (codes + step).clamp(-8, 7)
    return [{"check": "oscillation counter", "case": f"{steps} steps of 64x64 codes", "elements": codes.numel(),
             "oscillations": total, "steps_differing": differing}]


def _ofq_attention_module(root: Path):  # noqa: ANN202
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from src.quantization.modules.swin_attention_and_mlp import QAttention_swin_qkreparam
        from src.swin import ShiftedWindowAttention
    return QAttention_swin_qkreparam, ShiftedWindowAttention


def check_qkr(root: Path, seed: int = 0) -> list[dict]:
    import torch
    import torch.nn as nn
    from timm.models.swin_transformer import SwinTransformerBlock

    from mixaq.models import QuantConfig, calibrating, convert_swin

    QAttention, ShiftedWindowAttention = _ofq_attention_module(root)
    rows = []
    dim, heads, ws, hw = 48, 3, 7, 14
    for shift in (0, 3):
        for w_bits, a_bits in ((4, 4), (4, 2)):
            torch.manual_seed(seed)
            block = SwinTransformerBlock(dim, (hw, hw), num_heads=heads, window_size=ws, shift_size=shift).eval()
            with torch.no_grad():
                block.attn.qkv.bias[:2 * dim] = 0  # their split has no query / key bias
                block.attn.relative_position_bias_table.normal_(0, 0.5)
            model = convert_swin(nn.Sequential(block), QuantConfig(a_bits, a_bits, w_bits, weight_observer="statsq",
                                                                   qkr=True, observer="minmax"))
            x = torch.randn(2, hw, hw, dim, generator=torch.Generator().manual_seed(seed + 1))
            with torch.no_grad(), calibrating(model):
                model(x)
            block.mlp.drop2 = _zero_module()  # the block's output is then x + attention(norm1(x))
            base = ShiftedWindowAttention(dim, [ws, ws], [shift, shift], heads)
            with torch.no_grad():
                base.qkv.weight.copy_(block.attn.qkv.weight)
                base.qkv.bias.copy_(block.attn.qkv.bias)
            theirs = QAttention(base, weight_bits=w_bits, input_bits=a_bits, pretrained_initialized=True).eval()
            aq = block.act_quant["high"]
            with torch.no_grad():
                theirs.proj.weight.copy_(block.attn.proj.weight)
                theirs.proj.bias.copy_(block.attn.proj.bias)
                theirs.relative_position_bias_table.copy_(block.attn.relative_position_bias_table)
            theirs.quant_x_4_qkv.input_quant_fn = aq["qkv_in"]
            theirs.quan_a_qkx_fn = aq["k"]
            theirs.quan_a_v_fn = aq["v"]
            theirs.quan_a_softmax_fn = aq["attn"]
            theirs.proj.input_quant_fn = aq["proj_in"]
            with torch.no_grad():
                ours = model(x) - x
                ref = theirs(block.norm1(x))[0]
            diff = (ours - ref).abs()
            rows.append({"check": "QKR attention", "case": f"W{w_bits}A{a_bits}, shift {shift}", "elements": ref.numel(),
                         "max_abs_diff": float(diff.max()), "max_abs_output": float(ref.abs().max()),
                         "elements_off_by_1e-4": int((diff > 1e-4).sum())})
    return rows


def _zero_module():  # noqa: ANN202
    import torch.nn as nn

    class Zero(nn.Module):
        """Stands in for the MLP's last dropout: the MLP branch adds nothing."""

        def forward(self, h):  # noqa: ANN001, ANN202
            return h * 0

    return Zero()


def run_all(root: Path, seed: int = 0) -> list[dict]:
    statsq = load_statsq(root)
    return (check_statsq(statsq, seed) + check_cga(load_cga_freeze(root), seed) + check_oscillation(statsq, seed)
            + check_qkr(root, seed))


def markdown(rows: list[dict]) -> str:
    lines = ["| check | case | elements | result |", "|---|---|---|---|"]
    for r in rows:
        if r["check"] == "StatsQ":
            res = f"max |Δ| {r['max_abs_diff']:.1e}, gradient max |Δ| {r['grad_max_abs_diff']:.1e}, {r['codes']} integer codes used"
        elif r["check"] == "CGA freeze":
            res = f"frozen {r['frozen_ours']} (theirs {r['frozen_theirs']}), {r['decisions_differing']} decisions differ"
        elif r["check"] == "oscillation counter":
            res = f"{r['oscillations']} oscillations, {r['steps_differing']} steps differ"
        else:
            res = (f"max |Δ| {r['max_abs_diff']:.1e} (outputs up to {r['max_abs_output']:.2f}), "
                   f"{r['elements_off_by_1e-4']} elements off by > 1e-4")
        lines.append(f"| {r['check']} | {r['case']} | {r['elements']} | {res} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_ofq", description=__doc__.splitlines()[0])
    parser.add_argument("--ofq-root", default=None, help=f"OFQ checkout (default: ${ENV})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None)
    args = parser.parse_args(argv)
    try:
        root = ofq_root(args.ofq_root)
    except MixaqError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = run_all(root, args.seed)
    print(markdown(rows))
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
