"""The Swin workload against an independent count: fvcore tracing timm's own model.

fvcore counts one "flop" per multiply-accumulate for conv / linear / matmul and 5 per element for
an affine LayerNorm. It skips elementwise ops (residual and bias adds, the relative-position bias
and shift-mask adds, softmax, GELU, padding, rolls) and has no handler for
`scaled_dot_product_attention`, so the attention modules are switched to timm's explicit
`q @ k.T` / `attn @ v` path before tracing. The timm model's final `norm` belongs to the
classifier trunk, not to a detection backbone, and is subtracted.
"""
from __future__ import annotations

import numpy as np
import pytest

from mixaq.simulator import WindowAssignment, build_workload, estimate, get_arch

torch = pytest.importorskip("torch", reason="fvcore cross-check needs torch (dev extra)")
timm = pytest.importorskip("timm", reason="fvcore cross-check needs timm")
fvcore_nn = pytest.importorskip("fvcore.nn", reason="fvcore cross-check needs fvcore (dev extra)")

LAYERNORM_OPS = ("patch_norm", "norm1", "norm2", "merge_norm")


def fvcore_counts(arch_name: str, image_hw: tuple[int, int]) -> tuple[dict[str, int], int]:
    torch.set_num_threads(1)
    arch = get_arch(arch_name)
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=0,
                              img_size=image_hw, **arch.timm_kwargs()).eval()
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    analysis = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, arch.in_chans, *image_hw))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with torch.no_grad():
        by_operator = dict(analysis.by_operator())
        final_norm = analysis.by_module()["norm"]
    return by_operator, final_norm


@pytest.mark.parametrize("arch_name,image_hw", [
    ("swin_t", (224, 224)),     # the reference point: timm swin_tiny_patch4_window7_224
    ("swin_nano", (60, 92)),    # grids 15x23 / 8x12: window padding in every stage, odd merges
    ("swin_micro", (32, 160)),  # grid 2x10 in stage 2: timm's per-axis 2x4 windows
])
def test_macs_and_layernorms_match_fvcore_on_timm(arch_name, image_hw):
    by_operator, final_norm = fvcore_counts(arch_name, image_hw)
    arch = get_arch(arch_name)
    report = estimate("bitfusion", arch, image_hw, WindowAssignment.uniform(arch, 8, 8))
    gemm_macs = by_operator.pop("conv") + by_operator.pop("linear") + by_operator.pop("matmul")
    assert report.totals.macs == gemm_macs
    t = report.table
    layernorm = np.isin(t["op"], LAYERNORM_OPS)
    elements = (t["M"][layernorm] * t["N"][layernorm]).sum()
    assert 5 * elements == by_operator.pop("layer_norm") - final_norm
    assert not by_operator, f"fvcore counted ops this test does not account for: {by_operator}"
    if image_hw == (224, 224):  # the Swin paper's "4.5G FLOPs" for Swin-T are these MACs
        assert 4.45e9 < report.totals.macs < 4.55e9


def test_padded_tokens_for_attention_real_tokens_for_mlp():
    arch = get_arch("swin_nano")
    wl = build_workload(arch, (60, 92))
    g = wl.gemm
    rows = {(op, blk): m for op, blk, m, br in zip(g.op, g.block, g.m, g.branch) if br == "high"}
    # stage 0: 15x23 tokens in 4x6 windows of 4x4 -> 24 windows, 384 padded tokens
    assert rows[("qkv", 0)] == rows[("proj", 0)] == 24 * 16
    assert rows[("fc1", 0)] == rows[("fc2", 0)] == 15 * 23
    # stage 1: merging pads 15x23 to 16x24 -> 8x12 tokens in 2x3 windows
    assert rows[("qkv", 2)] == 6 * 16 and rows[("fc1", 2)] == 8 * 12
    qk = [(c, m, n, k) for op, blk, c, m, n, k, br in zip(g.op, g.block, g.count, g.m, g.n, g.k, g.branch)
          if op == "qk" and blk == 0 and br == "high"]
    assert qk == [(24 * 1, 16, 16, 16)]  # windows x heads GEMMs of (ws², head_dim)·(head_dim, ws²)
