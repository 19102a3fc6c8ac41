"""mixaq's Swin Mask R-CNN / Cascade Mask R-CNN against mmdetection 3.3.0 itself (run in `.venv-mmdet`).

The venv is built on first use with `make mmdet-venv` (~15 s with PyPI: mmdet, mmcv-lite, mmengine;
torch comes from the project venv). Without it the tests skip and say why. Random small models
(embed 32, window 7, FPN 64), three synthetic images of different sizes, test scale 512x320
(the code path is the 1333x800 one; benchmarks/bench_oracle.py runs that scale).
"""
from __future__ import annotations

import pytest
import torch

from mixaq.simulator import SwinArch

from benchmarks._mmdet import run_mmdet


def _random_official_backbone(arch: SwinArch, seed: int = 0):  # noqa: ANN202
    from mixaq.models.detection._official import OfficialSwin

    torch.manual_seed(seed)
    model = OfficialSwin(arch).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # LayerNorms away from the identity
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.2)
            elif "relative_position_bias_table" in name:
                p.normal_(0.0, 0.5)
    return model


def test_backbone_equals_mmdet_and_timm_does_not(mmdet_python, tmp_path):
    """The official backbone at sizes that are no window multiple at any stage equals mmdet's
    SwinTransformer (weights through mmdet's own converter); stock timm with the same weights does not."""
    from timm.models.swin_transformer import get_relative_position_index

    from mixaq.models import build_swin

    arch = SwinArch(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7)
    model = _random_official_backbone(arch)
    state = dict(model.state_dict())
    for s, stage in enumerate(model.layers):
        for b in range(len(stage.blocks)):
            state[f"layers.{s}.blocks.{b}.attn.relative_position_index"] = get_relative_position_index(7, 7)
    torch.save(state, tmp_path / "w.pth")
    x = torch.randn(1, 3, 200, 304)  # 800x1216 scaled down by 4: no stage a window multiple
    torch.save(x, tmp_path / "x.pt")
    run_mmdet({"kind": "backbone", "swin": {"embed_dim": 32, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8],
                                            "window_size": 7},
               "weights": str(tmp_path / "w.pth"), "inputs": str(tmp_path / "x.pt"), "out": str(tmp_path / "y.pt")},
              python=mmdet_python)
    reference = torch.load(tmp_path / "y.pt", weights_only=True)
    with torch.no_grad():
        ours = model(x)
    assert [o.shape for o in ours] == [r.shape for r in reference]
    assert max((o - r).abs().max().item() for o, r in zip(ours, reference)) <= 1e-5

    timm_model = build_swin(arch, (200, 304), features_only=True).eval()
    timm_state = {k.replace("layers.", "layers_", 1): v for k, v in model.state_dict().items()
                  if not k.startswith("norm") and ".downsample." not in k}
    # timm keeps patch merging at the start of the next stage.
    for s in range(1, arch.num_stages):
        for name in ("norm.weight", "norm.bias", "reduction.weight"):
            timm_state[f"layers_{s}.downsample.{name}"] = state[f"layers.{s - 1}.downsample.{name}"]
    timm_model.load_state_dict(timm_state)
    with torch.no_grad():
        stock = [f.permute(0, 3, 1, 2) for f in timm_model(x)]
        ours_pre_norm = []
        feats = model.patch_embed(x)
        for stage in model.layers:
            feats = stage.blocks(feats)
            ours_pre_norm.append(feats.permute(0, 3, 1, 2))
            if stage.downsample is not None:
                feats = stage.downsample(feats)
    assert max((a - b).abs().max().item() for a, b in zip(stock, ours_pre_norm)) > 1e-2


FAMILIES = ("mask_rcnn", "cascade_mask_rcnn")


@pytest.fixture(scope="module")
def oracle_run(mmdet_python, tmp_path_factory):
    """One oracle process for both families: mmdet converts each official file and detects."""
    from benchmarks._oracle_check import run_checks

    workdir = tmp_path_factory.mktemp("oracle")
    return workdir, run_checks(FAMILIES, workdir, scale=(512, 320), n_images=3, threads=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_detections_equal_mmdet(oracle_run, family):
    """Both checkpoint formats; box IoU >= 0.98, score within 0.01, same label, mask IoU >= 0.95 for
    >= 95 % of mmdet's detections, bbox and segm AP within 0.005 (ground truth made from mmdet's
    detections, so AP is far from 0)."""
    agreements = [a for a in oracle_run[1] if a.family == family]
    assert {a.source_format for a in agreements} == {"official", "mmdet3"}
    for a in agreements:
        assert a.n_reference >= 150, a  # the random model is confident enough to test anything
        assert a.n_mixaq == a.n_reference, a
        assert a.fraction >= 0.95, a
        assert 0.1 < a.ap_bbox[1] and 0.1 < a.ap_segm[1], a
        assert abs(a.ap_bbox[0] - a.ap_bbox[1]) <= 0.005, a
        assert abs(a.ap_segm[0] - a.ap_segm[1]) <= 0.005, a


@pytest.mark.parametrize("family", FAMILIES)
def test_mmdet3_import_inverts_mmdets_converter(oracle_run, family):
    """mmdet's swin_converter (official -> mmdet 3.x keys, nn.Unfold channel order) followed by our
    import gives back exactly the official weights and the same inferred architecture."""
    from mixaq.models.detection._checkpoint import load_detector

    workdir = oracle_run[0]
    a, config_a, cats, extra_a = load_detector(workdir / f"{family}_official.pth")
    b, config_b, _, extra_b = load_detector(workdir / f"{family}_mmdet3.pth")
    assert (extra_a["source_format"], extra_b["source_format"]) == ("official", "mmdet3")
    assert config_a == config_b and config_a.head == family
    assert [c["name"] for c in cats] == ["circle", "square", "triangle", "star", "cross"]
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
