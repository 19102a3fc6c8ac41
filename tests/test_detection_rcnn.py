"""Swin Mask R-CNN / Cascade Mask R-CNN without the oracle: registry, checkpoint import and
architecture inference, one-line errors, `mixaq eval` on an official-format file with masks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mixaq.search.cli import main
from mixaq.simulator import MixaqError

from benchmarks._oracle_check import CLASS_NAMES, MODEL, _config, make_checkpoint, make_images

SCALE = (320, 200)  # small keep-ratio test scale: the code path is 1333x800's, the test stays fast
FAMILIES = ("mask_rcnn", "cascade_mask_rcnn")
# Category ids are not contiguous and not listed in order: class i is the i-th id in sorted order.
CATEGORY_IDS = (3, 7, 9, 12, 20)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rcnn")
    paths = make_images(root / "images", ((120, 160), (150, 110)))
    images = [{"id": i + 1, "file_name": p.name, "height": h, "width": w}
              for i, (p, (h, w)) in enumerate(zip(paths, ((120, 160), (150, 110))))]
    rle = {"size": [120, 160], "counts": "0" + "1" * 0}
    import pycocotools.mask as mask_util

    box_mask = np.zeros((120, 160), dtype=np.uint8, order="F")
    box_mask[20:60, 30:90] = 1
    rle = mask_util.encode(box_mask)
    rle["counts"] = rle["counts"].decode()
    anns = [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [30, 20, 60, 40], "area": 2400.0, "iscrowd": 0,
             "segmentation": rle}]
    cats = [{"id": cid, "name": name} for cid, name in zip(CATEGORY_IDS, CLASS_NAMES)][::-1]
    ann = root / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    ckpts = {f: make_checkpoint(f, root / f"{f}.pth", scale=SCALE) for f in FAMILIES}
    return root, ann, ckpts


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_registry_builds_every_family_with_blocks_where_convert_finds_them():
    from mixaq.models import convert_swin
    from mixaq.models._two_branch import converted_blocks
    from mixaq.models.detection._detector import DetectorConfig, build_detector
    from mixaq.models.detection._registry import FAMILIES as REGISTRY

    assert set(FAMILIES) <= set(REGISTRY) and {"fcos", "retinanet", "fasterrcnn"} <= set(REGISTRY)
    for name, family in REGISTRY.items():
        config = _config(name, SCALE) if family.inputs == "mmdet" else DetectorConfig(
            arch="swin_nano", image_size=64, head=name, fpn_channels=32, head_convs=1, out_indices=(0, 1))
        model = convert_swin(build_detector(config))
        assert len(converted_blocks(model)) == config.swin_arch.num_blocks
        assert model.label_offset == family.label_offset
        assert family.iou_types == (("bbox", "segm") if name in FAMILIES else ("bbox",))


@pytest.mark.parametrize("family", FAMILIES)
def test_architecture_inferred_from_official_file(files, family):
    from mixaq.models.detection._checkpoint import load_detector

    model, config, categories, extra = load_detector(files[2][family])
    expected = _config(family, (1333, 800))
    assert config == expected
    assert extra == {"source_format": "official"} and [c["name"] for c in categories] == list(CLASS_NAMES)
    assert config.swin_arch.embed_dim == MODEL["embed_dim"] and config.num_classes == MODEL["num_classes"]


def test_eval_cli_float_with_masks_and_saved_detections(files, capsys, tmp_path):
    root, ann, ckpts = files
    out_json = tmp_path / "dets.json"
    code, out, err = _run(capsys, "eval", "--checkpoint", str(ckpts["mask_rcnn"]), "--coco-root", str(root / "images"),
                          "--ann", str(ann), "--high-bits", "float", "--low-bits", "float", "--calib", "0",
                          "--test-scale", "320,200", "--device", "cpu", "--format", "json",
                          "--save-detections", str(out_json))
    assert code == 0, err
    report = json.loads(out)
    assert report["detector"] == "mask_rcnn" and report["device"] == "cpu"
    assert set(report["segm"]) == {"ap_segm", "ap50_segm", "ap75_segm", "ap_small_segm", "ap_medium_segm",
                                   "ap_large_segm"}
    dets = json.loads(out_json.read_text())
    assert len(dets) == 200  # 100 per image: the random model is confident
    assert {d["category_id"] for d in dets} <= set(CATEGORY_IDS) and len({d["category_id"] for d in dets}) > 1
    first = dets[0]
    assert set(first) == {"image_id", "category_id", "bbox", "score", "segmentation"}
    assert set(first["segmentation"]) == {"size", "counts"} and len(first["bbox"]) == 4
    # Saved detections are what the stats were computed from: COCOeval on them gives the same AP.
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        ev = COCOeval(gt, gt.loadRes(str(out_json)), "segm")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] == pytest.approx(report["segm"]["ap_segm"], abs=1e-3)


def test_labels_map_to_sorted_category_ids(files):
    """Class i -> the i-th category id in sorted order, whatever order the file lists them in."""
    from mixaq.models.detection import Evaluator

    root, ann, ckpts = files
    ev = Evaluator(ckpts["mask_rcnn"], root / "images", ann=ann, calib_images=0, device="cpu", test_scale=SCALE)
    result = ev.evaluate(None, None, keep_detections=True)
    sample = ev._image(ev.eval_ids[0])
    with torch.no_grad():
        raw = ev.model([sample])[0]
    first = [d for d in result.detections if d["image_id"] == ev.eval_ids[0]]
    assert [d["category_id"] for d in first] == [CATEGORY_IDS[i] for i in raw["labels"].tolist()]


def _state(family_file):  # noqa: ANN001, ANN202
    return torch.load(family_file, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("case", ["classification", "retinanet", "faster_rcnn", "truncated", "resnet",
                                  "wrong_detector", "class_count", "class_names", "no_data"])
def test_bad_input_is_one_line(files, capsys, tmp_path, case, monkeypatch):
    root, ann, ckpts = files
    payload = _state(ckpts["mask_rcnn"])
    state = payload["state_dict"]
    path, extra, expect = tmp_path / f"{case}.pth", [], None
    if case == "classification":  # the official classification release: {"model": timm-style keys}
        torch.save({"model": {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}}, path)
        expect = "classification"
    elif case == "retinanet":
        bad = {k: v for k, v in state.items() if k.startswith(("backbone.", "neck."))}
        bad["bbox_head.retina_cls.weight"] = torch.zeros(45, 64, 3, 3)
        torch.save({"state_dict": bad}, path)
        expect = "RetinaNet"
    elif case == "faster_rcnn":
        torch.save({"state_dict": {k: v for k, v in state.items() if "mask_head" not in k}}, path)
        expect = "Faster R-CNN"
    elif case == "truncated":
        data = ckpts["mask_rcnn"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
        expect = "not a readable torch checkpoint"
    elif case == "resnet":
        bad = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        bad["backbone.conv1.weight"] = torch.zeros(64, 3, 7, 7)
        torch.save({"state_dict": bad}, path)
        expect = "not a Swin"
    elif case == "wrong_detector":
        path = ckpts["mask_rcnn"]
        extra, expect = ["--detector", "cascade_mask_rcnn"], "does not fit"
    elif case == "class_count":
        bad = dict(payload)
        bad["meta"] = {}
        data = json.loads(ann.read_text())
        data["categories"] = data["categories"][:4]  # drops id 3; the annotation (id 9) stays valid
        (tmp_path / "ann4.json").write_text(json.dumps(data))
        torch.save(bad, path)
        extra, expect = ["--ann", str(tmp_path / "ann4.json")], "4 categories but the model predicts 5"
    elif case == "class_names":
        bad = dict(payload)
        bad["meta"] = {"CLASSES": ("circle", "square", "star", "triangle", "cross")}
        torch.save(bad, path)
        expect = "classes in another id order"
    elif case == "no_data":
        monkeypatch.delenv("MIXAQ_COCO", raising=False)
        code, _, err = _run(capsys, "eval", "--checkpoint", str(ckpts["mask_rcnn"]))
        assert code == 2 and len(err.strip().splitlines()) == 1 and "--coco-root" in err
        return
    if "--ann" not in extra:
        extra = [*extra, "--ann", str(ann)]
    code, _, err = _run(capsys, "eval", "--checkpoint", str(path), "--coco-root", str(root / "images"), *extra,
                        "--high-bits", "float", "--low-bits", "float", "--calib", "0", "--test-scale", "320,200")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert expect in err, err


def test_stds_from_meta_config_text():
    from mixaq.models.detection._import import _stds_from_meta

    text = ("rpn_head=dict(bbox_coder=dict(target_stds=[1.0, 1.0, 1.0, 1.0])), roi_head=dict(bbox_head=["
            "dict(target_stds=[0.1, 0.1, 0.2, 0.2]), dict(target_stds=[0.05, 0.05, 0.1, 0.1]), "
            "dict(target_stds=[0.033, 0.033, 0.067, 0.067])])")
    assert _stds_from_meta({"config": text}, 3) == ((0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1),
                                                    (0.033, 0.033, 0.067, 0.067))
    assert _stds_from_meta({"config": text}, 1) is None  # does not fit: defaults apply
    assert _stds_from_meta({}, 3) is None


def test_device_names_checked_before_work(capsys):
    from mixaq.models._device import check_device_name, resolve_device

    assert check_device_name("cuda:1") == "cuda:1" and resolve_device("cpu").type == "cpu"
    with pytest.raises(MixaqError, match="--device"):
        check_device_name("gpu0")
    code, _, err = _run(capsys, "eval", "--device", "tpu")
    assert code == 2 and "--device" in err


@pytest.mark.parametrize("hw", [(200, 304), (150, 230)])  # 800x1216 scaled down; no stage a window multiple
def test_two_branch_float_equals_official_backbone(hw):
    """The converted backbone with float branches computes the official backbone exactly, with and
    without a window mix, and records the windows the simulator counts for the official geometry."""
    import copy

    from mixaq.models import MixConfig, QuantConfig, convert_swin, get_record, reset_record, set_mix
    from mixaq.models._two_branch import converted_blocks
    from mixaq.models.detection._official import OfficialSwin
    from mixaq.simulator import SwinArch

    arch = SwinArch(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7,
                    window_semantics="official")
    torch.manual_seed(1)
    model = OfficialSwin(arch).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.2)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        reference = model(x)
    converted = convert_swin(copy.deepcopy(model), QuantConfig.float()).eval()
    assert {b.window_semantics for _, b in converted_blocks(converted)} == {"official"}
    for mix in (None, MixConfig(low_ratios=0.5, prune_ratios=0.0), MixConfig(low_ratios=0.3, strategy="random")):
        set_mix(converted, mix)
        reset_record(converted)
        with torch.no_grad():
            out = converted(x)
        assert max((a - b).abs().max().item() for a, b in zip(out, reference)) <= 1e-5
        counts = get_record(converted).n_windows[0]
        assert counts.tolist() == arch.windows_per_block(hw).tolist()


class _MaskedSynthetic:
    """Picklable factory: the synthetic objective plus a mask AP (0.8 x box AP - 0.01)."""

    def __call__(self):  # noqa: ANN204
        from dataclasses import replace

        from mixaq.search import SyntheticAccuracy

        inner = SyntheticAccuracy()()

        class Fn:
            arch, image_hw = inner.arch, inner.image_hw

            def fingerprint(self):  # noqa: ANN202
                return inner.fingerprint()

            def __call__(self, point):  # noqa: ANN001, ANN202
                r = inner(point)
                return replace(r, ap_segm=0.8 * r.ap - 0.01, ap50_segm=0.8 * r.ap50)

        return Fn()


def test_sweep_carries_mask_ap_and_can_maximise_it(tmp_path):
    from mixaq.search import SearchSpace, SweepSettings, build_record, run_sweep
    from mixaq.search.study._storage import get_storage
    from mixaq.simulator import get_arch

    import optuna

    space = SearchSpace(num_pairs=get_arch("swin_nano").num_pairs)
    settings = SweepSettings(space=space, population_size=4, objectives=("map_segm", "speedup_bops"),
                             baseline_points=1)
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(settings, _MaskedSynthetic(), url, "m", 5, progress=False, out_dir=tmp_path / "out")
    study = optuna.load_study(study_name="m", storage=get_storage(url))
    record = build_record(study)
    done = record.trials[record.trials.state == "COMPLETE"]
    assert len(done) == 5 and "ap_segm" in done and done["ap_segm"].notna().all()
    assert np.allclose(done["ap_segm"], 0.8 * done["ap"] - 0.01)
    objective = {t.number: t.values[0] for t in study.trials if t.values is not None}
    assert np.allclose([objective[n] for n in done["number"]], done["ap_segm"])  # mask AP is the objective
    import pandas as pd

    csv = pd.read_csv(next((tmp_path / "out").glob("trials.csv")))
    assert "ap_segm" in csv.columns
    with pytest.raises(MixaqError, match="ap_mask"):
        SweepSettings(space=space, objectives=("ap_mask", "speedup_bops"))


def test_paper_table_command_on_a_random_model(files, tmp_path):
    """`benchmarks.table_paper` end to end (tiny model, 1 image, small scale): rows, mask AP, solved ratios."""
    import pandas as pd

    from benchmarks import table_paper

    root, ann, ckpts = files
    code = table_paper.main(["--checkpoint", str(ckpts["mask_rcnn"]), "--coco-root", str(root / "images"),
                             "--ann", str(ann), "--device", "cpu", "--workers", "0", "--calib", "1",
                             "--observer", "minmax", "--test-scale", "256,160", "--out", str(tmp_path)])
    assert code == 0
    df = pd.read_csv(tmp_path / "table.csv")
    assert {"float", "uniform W4A8", "uniform W4A6", "uniform W4A4", "MixA-Q W4A8/A4"} == set(df.method)
    assert set(df.selection) == {"-", "importance", "random", "reversed"} and "ap_segm" in df
    mix = df[df.method == "MixA-Q W4A8/A4"]
    assert len(set(mix.low_ratio)) == 2 and (mix.bops_speedup >= 1.0).all()
    assert "mask AP" in (tmp_path / "table.md").read_text()


@pytest.mark.parametrize("target", [1.24, 1.35])
def test_ratio_for_speedup_hits_the_target_on_the_simulator(target):
    from mixaq import simulator
    from mixaq.models.detection._rcnn_config import RCNNConfig
    from benchmarks._ptq_table import ratio_for_speedup
    from mixaq.simulator import WindowAssignment

    config = RCNNConfig()  # Swin-T at 800x1344, official windows
    arch, hw = config.swin_arch, config.image_hw
    spec = simulator.load_spec("bitfusion")
    base = simulator.estimate(spec, arch, hw, WindowAssignment.uniform(arch, 8, 4)).totals.bops

    def speedup(r: float) -> float:
        return base / simulator.estimate(spec, arch, hw, WindowAssignment.from_pair_ratios(arch, hw, r)).totals.bops

    r = ratio_for_speedup("bitfusion", arch, hw, target)
    assert speedup(r) >= target > speedup(r - 2e-3)
    with pytest.raises(MixaqError, match="out of reach"):
        ratio_for_speedup("bitfusion", arch, hw, 5.0)


def test_strict_fp32_is_scoped():
    """CUDA evaluation runs without TF32 and leaves torch's settings as it found them."""
    from mixaq.models._device import strict_fp32

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, True
        with strict_fp32(torch.device("cuda")):  # a device object needs no GPU
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
