"""Cross-check mixaq's RepQ-ViT quantizers against RepQ-ViT's own code (a checkout of zkkli/RepQ-ViT).

    git clone https://github.com/zkkli/RepQ-ViT /tmp/RepQ-ViT
    python -m benchmarks.check_repq --repq-root /tmp/RepQ-ViT [--bits 4 6 8] [--csv out.csv]

A small timm Swin with random weights (LayerNorm affines spread over orders of magnitude per
channel, as in trained Swins) is converted with `QuantConfig(observer="repq")` and calibrated on one
fixed batch. Every tensor the calibration observed -- the post-LN inputs of qkv and fc1, the
post-softmax attention and the other uniform activations -- is fed to RepQ-ViT's own quantizer
modules (`classification/quant/quantizer.py`: `UniformQuantizer`, channel-wise for the post-LN
tensors as their `quant_model` configures them, and `LogSqrt2Quantizer`), imported from the
checkout; nothing of theirs is copied here. Printed per tensor kind and bit width: whether the
scales / zero points are equal, the max difference of the quantized activations, and for the
post-LN tensors the same after reparameterization (ours: integer target zero point, exact;
theirs: the mean zero point, fractional, as their `test_quant.py` sets it).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from mixaq.simulator import MixaqError

QUANTIZER_PATH = Path("classification") / "quant" / "quantizer.py"


def load_repq_quantizer(root: str | Path):  # noqa: ANN201 (their module)
    """RepQ-ViT's quantizer module, imported from a checkout (it imports only torch and numpy)."""
    path = Path(root) / QUANTIZER_PATH
    if not path.is_file():
        raise MixaqError(f"--repq-root: {path} not found (expected a checkout of github.com/zkkli/RepQ-ViT)")
    spec = importlib.util.spec_from_file_location("repq_vit_quantizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(seed: int):  # noqa: ANN202
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=56, embed_dim=24,
                              depths=(2, 2), num_heads=(1, 2), num_classes=0).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):  # channel scales over ~3 decades
                p.copy_(torch.exp(torch.randn_like(p) * 1.5))
            elif "norm" in name and name.endswith("bias"):
                p.copy_(torch.randn_like(p))
    return model


def capture(bits: int, seed: int = 0, batch: int = 2):  # noqa: ANN201
    """Calibrate a small Swin with repq at `bits`; return the blocks and what each quantizer saw."""
    import torch

    from mixaq.models import QuantConfig, calibrating, convert_swin
    from mixaq.models._two_branch import converted_blocks

    model = _model(seed)
    x = torch.randn(batch, 3, 56, 56, generator=torch.Generator().manual_seed(seed + 1))
    convert_swin(model, QuantConfig(bits, bits, 4, observer="repq"))
    seen: dict[tuple[str, str], list] = {}
    blocks = [b for _, b in converted_blocks(model)]

    def tap(key: tuple[str, str], observe):  # noqa: ANN001, ANN202
        def wrapped(t):  # noqa: ANN001, ANN202
            seen.setdefault(key, []).append(t.detach().clone())
            return observe(t)
        return wrapped

    for i, block in enumerate(blocks):
        for target, fold in block.repq.items():
            fold.observe = tap((f"block{i}", target), fold.observe)
        for target, fq in block.act_quant["high"].items():
            if target not in block.repq:
                fq.observe = tap((f"block{i}", target), fq.observe)
    with torch.no_grad(), calibrating(model):
        model(x)
    return model, blocks, seen


def compare(repq_root: str | Path, bits: int, seed: int = 0) -> list[dict]:
    """One row per block and tensor: agreement of scales and of quantized activations."""
    import torch

    from mixaq.models._quant import fake_quantize
    from mixaq.models._repq import uniform_search

    theirs = load_repq_quantizer(repq_root)
    _, blocks, seen = capture(bits, seed)
    rows = []
    for (block_name, target), tensors in seen.items():
        (t,) = tensors  # one calibration batch
        block = blocks[int(block_name.removeprefix("block"))]
        row = {"bits": bits, "block": block_name, "tensor": target}
        if target in ("qkv_in", "fc1_in"):
            x3 = t.reshape(-1, t.shape[-2], t.shape[-1])  # (n, N, C): their channel-wise 3-D layout
            ref = theirs.UniformQuantizer(n_bits=bits, channel_wise=True)
            ref_out = ref(x3)
            ref_scale, ref_zp = ref.delta.reshape(-1), ref.zero_point.reshape(-1)
            scale, zp, _, _ = uniform_search(x3.reshape(-1, x3.shape[-1]).t(), bits)
            fold, fq = block.repq[target], block.act_quant["high"][target]
            shift = fold.shift[0]
            # The folded network: LN output / r - b, our per-tensor quantizer, mapped back (x̂' + b)·r.
            ours = (fq(x3 / fold.ratio - shift) + shift) * fold.ratio
            steps = (ours - ref_out).abs() / ref_scale
            # The same two quantizers in float64: float32 cannot resolve x/step to 1e-3 step in
            # channels whose range sits far from zero (zero points of -10^4 at 8 bits), both sides.
            x64, r64, b64 = x3.double(), fold.ratio.double(), shift.double()
            ours64 = (fake_quantize(x64 / r64 - b64, fq.scale.double(), fq.zero_point.double(), 0, 2**bits - 1) + b64) * r64
            ref.delta, ref.zero_point = ref.delta.double(), ref.zero_point.double()
            steps64 = (ours64 - ref(x64)).abs() / ref_scale.double()
            ref.delta, ref.zero_point = ref.delta.float(), ref.zero_point.float()
            # Theirs after their reparameterization (test_quant.py): target = mean delta, mean zero point.
            target_delta, target_zp = ref_scale.mean(), ref_zp.mean()
            r = ref_scale / target_delta
            b = (-ref_zp * ref_scale) / r - (-target_zp * target_delta)
            ref.channel_wise, ref.delta, ref.zero_point = False, target_delta, target_zp
            their_steps = ((ref(x3 / r - b) + b) * r - ref_out).abs() / ref_scale
            row.update(
                scales_equal=bool(torch.equal(scale, ref_scale) and torch.equal(zp, ref_zp)),
                max_scale_diff=float((scale - ref_scale).abs().max()),
                max_act_diff=float((ours - ref_out).abs().max()),
                max_diff_steps=float(steps.max()),
                flipped=int((steps > 0.5).sum()),
                flipped_fp64=int((steps64 > 0.5).sum()),
                elements=t.numel(),
                their_folded_median_steps=float(their_steps.median()),
                their_folded_max_steps=float(their_steps.max()),
            )
        elif target == "attn":
            ref = theirs.LogSqrt2Quantizer(n_bits=bits)
            ref_out = ref(t)
            fq = block.act_quant["high"][target]
            ours = fq(t.clone())
            row.update(scales_equal=bool(float(fq.scale) == float(ref.delta)), max_scale_diff=abs(float(fq.scale) - float(ref.delta)),
                       max_act_diff=float((ours - ref_out).abs().max()), elements=t.numel(),
                       flipped=int((ours != ref_out).sum()))
        else:
            ref = theirs.UniformQuantizer(n_bits=bits, channel_wise=False)
            ref_out = ref(t)
            fq = block.act_quant["high"][target]
            ours = fq(t.clone())
            complete = t.numel() <= (1 << 15)  # our observer's per-batch sample holds every value
            row.update(scales_equal=bool(float(fq.scale) == float(ref.delta) and float(fq.zero_point) == float(ref.zero_point)),
                       max_scale_diff=abs(float(fq.scale) - float(ref.delta)),
                       max_act_diff=float((ours - ref_out).abs().max()), elements=t.numel(),
                       max_diff_steps=float((ours - ref_out).abs().max() / ref.delta),
                       flipped=int(((ours - ref_out).abs() > 0.5 * ref.delta).sum()), sampled=not complete)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_repq", description=__doc__.splitlines()[0])
    parser.add_argument("--repq-root", required=True, help="path of a checkout of github.com/zkkli/RepQ-ViT")
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None)
    args = parser.parse_args(argv)
    load_repq_quantizer(args.repq_root)  # fail fast on a bad path

    import pandas as pd

    df = pd.DataFrame([row for bits in args.bits for row in compare(args.repq_root, bits, args.seed)])
    other = df.sampled.fillna(False).map({True: "other, subsampled (fc2_in)", False: "other (q,k,v,proj_in,fc2_in)"})
    kind = df.tensor.where(df.tensor.isin(["qkv_in", "fc1_in", "attn"]), other)
    summary = df.assign(kind=kind).groupby(["bits", "kind"], sort=False).agg(
        tensors=("tensor", "size"), scales_equal=("scales_equal", "sum"), max_scale_diff=("max_scale_diff", "max"),
        max_act_diff=("max_act_diff", "max"), max_diff_steps=("max_diff_steps", "max"), flipped=("flipped", "sum"),
        flipped_fp64=("flipped_fp64", lambda v: v.sum(min_count=1)),
        elements=("elements", "sum"), their_folded_median_steps=("their_folded_median_steps", "median"),
        their_folded_max_steps=("their_folded_max_steps", "max"))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.to_string())
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
