"""mmdetection 3.3.0 as an oracle: runs INSIDE `.venv-mmdet` (never imports mixaq).

Usage: `.venv-mmdet/bin/python _mmdet_driver.py TASK.json`. The task says what to run:

- `{"kind": "backbone", "swin": {...}, "weights": W.pth, "inputs": X.pt, "out": Y.pt}`: mmdet's
  `SwinTransformer` with `swin` kwargs, weights in the official (classification-style `layers.*`)
  key layout converted by mmdet's own `swin_converter`; saves the tuple of outputs for input X.
- `{"kind": "detect", "family": "mask_rcnn" | "cascade_mask_rcnn", "model": {...}, "checkpoint": C,
  "images": [paths], "out": R.json}`: the detector from mmdet's shipped Swin / Cascade configs with
  the model sizes in `model`, weights from C (an mmdet 3.x checkpoint), `inference_detector` on each
  image (mmdet's whole test pipeline: cv2 decode, keep-ratio rescale, normalize, pad 32, batch 1).
  Writes per image: boxes (xyxy), scores, labels and RLE masks.
- `{"kind": "convert", "official": IN.pth, "out": OUT.pth}`: rewrites an official-release detector
  checkpoint (`backbone.layers.*`) into mmdet 3.x keys with mmdet's `swin_converter`.
- `{"kind": "loss", "family": ..., "model": {...}, "official": C.pth, "inputs": B.pt, "grads": [names],
  "deterministic_sampler": bool, "out": L.pt}`: the training losses of the config (`train_config`) on
  one padded batch B (images, img_hw, per-image gt boxes/labels/bitmaps and crowd boxes as ignored
  instances) with weights from the official-format C; saves every named loss and the gradients of
  `grads` (mmdet 3.x names) of their sum, in `dtype` (float32 by default). With `deterministic_sampler`, RandomSampler draws by
  `_deterministic_choice` (mixaq's test uses the same rule).
- `{"kind": "param_groups", "family": ..., "model": {...}, "out": G.json}`: the training model of
  `train_config` given to mmengine's `DefaultOptimWrapperConstructor` with the `optim_wrapper` of mmdet's
  `mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco` (AdamW, lr 1e-4, wd 0.05, its `paramwise_cfg`); writes
  `{mmdet parameter name: [lr, weight_decay]}`.
- `{"kind": "pipeline", "images": DIR, "ann": A.json, "draws": [[index, seed], ...], "out": P.pt}`:
  mmdet's CocoDataset with the train pipeline of that config (without PackDetInputs); for each draw,
  `np.random.seed(seed)` then item `index`, recording every `np.random.choice` / `randint` the
  transforms make; saves per draw the image, boxes, labels, ignore flags, masks and the recorded calls.
- `{"kind": "batch", "tasks": [...]}`: several of the above in one process, in order.

mmcv-lite has no compiled ops. The only two the Mask R-CNN test path calls are served from
torchvision by a stand-in `mmcv._ext` module: `nms` -> `torchvision.ops.nms`, `roi_align_forward`
-> `torchvision.ops.roi_align(aligned=True|False, sampling_ratio as given)`; any other op raises; training also needs `roi_align_backward`, served by torchvision's own backward op.
"""
from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from pathlib import Path

import torch
import torchvision


class _StandInExt(types.ModuleType):
    """`mmcv._ext` with nms and roi_align_forward from torchvision; anything else raises when called."""

    def __getattr__(self, name: str):  # noqa: ANN204
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise NotImplementedError(f"mmcv._ext.{name} is not served by the oracle's stand-in")

        return missing

    @staticmethod
    def nms(boxes, scores, iou_threshold, offset):  # noqa: ANN001, ANN205
        if offset != 0:
            raise NotImplementedError("stand-in nms supports offset=0 only")
        return torchvision.ops.nms(boxes, scores, float(iou_threshold))

    @staticmethod
    def roi_align_forward(input, rois, output, argmax_y, argmax_x, *, aligned_height, aligned_width,  # noqa: A002, ANN001, ANN205
                          spatial_scale, sampling_ratio, pool_mode, aligned):
        if pool_mode != 1:
            raise NotImplementedError("stand-in roi_align supports pool_mode='avg' only")
        output.copy_(torchvision.ops.roi_align(input, rois, (aligned_height, aligned_width), spatial_scale,
                                               sampling_ratio, aligned))

    @staticmethod
    def roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, *, aligned_height,  # noqa: ANN001, ANN205
                           aligned_width, spatial_scale, sampling_ratio, pool_mode, aligned):
        if pool_mode != 1:
            raise NotImplementedError("stand-in roi_align supports pool_mode='avg' only")
        b, c, h, w = grad_input.shape
        grad_input.copy_(torch.ops.torchvision._roi_align_backward(
            grad_output, rois, spatial_scale, aligned_height, aligned_width, b, c, h, w, sampling_ratio, aligned))


_EXT = _StandInExt("mmcv._ext")
_EXT.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # mmengine probes it with find_loader
sys.modules["mmcv._ext"] = _EXT

import mmdet  # noqa: E402
from mmengine.config import Config  # noqa: E402

CONFIG_DIR = Path(mmdet.__file__).resolve().parent / ".mim" / "configs"


def _swin_kwargs(m: dict) -> dict:
    return dict(type="SwinTransformer", embed_dims=m["embed_dim"], depths=m["depths"], num_heads=m["num_heads"],
                window_size=m["window_size"], mlp_ratio=m.get("mlp_ratio", 4), qkv_bias=True, qk_scale=None,
                drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, patch_norm=True,
                out_indices=tuple(range(len(m["depths"]))), with_cp=False, convert_weights=False, init_cfg=None)


def _convert_official(state: dict) -> dict:
    """Official detector state dict -> mmdet 3.x keys: mmdet's swin_converter on the backbone part."""
    from mmdet.models.backbones.swin import swin_converter

    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    out = dict(swin_converter(backbone))  # adds the "backbone." prefix back
    out.update({k: v for k, v in state.items() if not k.startswith("backbone.")})
    return out


def _bbox_head(m: dict, stds: list[float]) -> dict:
    common = dict(in_channels=m["fpn_channels"], fc_out_channels=m["fc_channels"], roi_feat_size=7,
                  num_classes=m["num_classes"], reg_class_agnostic=m["reg_class_agnostic"],
                  bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=stds),
                  loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                  loss_bbox=dict(type="L1Loss", loss_weight=1.0))
    if m["bbox_head"] == "shared2fc":
        return dict(type="Shared2FCBBoxHead", **common)
    return dict(type="ConvFCBBoxHead", num_shared_convs=4, num_shared_fcs=1, conv_out_channels=m["fpn_channels"],
                norm_cfg=dict(type="BN", requires_grad=True), **common)


def build_config(family: str, m: dict) -> Config:
    if family == "mask_rcnn":
        cfg = Config.fromfile(str(CONFIG_DIR / "swin" / "mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py"))
        cfg.model.roi_head.bbox_head = _bbox_head(m, [0.1, 0.1, 0.2, 0.2])
        cfg.model.roi_head.mask_head.num_classes = m["num_classes"]
    elif family == "cascade_mask_rcnn":
        cfg = Config.fromfile(str(CONFIG_DIR / "cascade_rcnn" / "cascade-mask-rcnn_r50_fpn_1x_coco.py"))
        stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
        cfg.model.roi_head.bbox_head = [_bbox_head(m, s) for s in stds]
        cfg.model.roi_head.mask_head.num_classes = m["num_classes"]
    else:
        raise SystemExit(f"unknown family {family}")
    cfg.model.backbone = _swin_kwargs(m)
    channels = [m["embed_dim"] * 2**i for i in range(len(m["depths"]))]
    cfg.model.neck.in_channels = channels
    cfg.model.neck.out_channels = m["fpn_channels"]
    cfg.model.rpn_head.in_channels = m["fpn_channels"]
    cfg.model.rpn_head.feat_channels = m["fpn_channels"]
    for key in ("bbox_roi_extractor", "mask_roi_extractor"):
        cfg.model.roi_head[key].out_channels = m["fpn_channels"]
    cfg.model.roi_head.mask_head.in_channels = m["fpn_channels"]
    cfg.model.roi_head.mask_head.conv_out_channels = m["mask_channels"]
    cfg.model.data_preprocessor.pad_size_divisor = 32
    scale = tuple(m.get("scale", (1333, 800)))
    for step in cfg.test_dataloader.dataset.pipeline:
        if step["type"] == "Resize":
            step["scale"] = scale
    return cfg


def train_config(family: str, m: dict) -> Config:
    """`build_config` with the training settings: mmdet's Swin Mask R-CNN config as shipped; for the
    cascade, the official release's (4conv1f BN heads with GIoU x 10 on decoded boxes, RPN smooth L1
    beta 1/9, anchors inside the image, 2000 proposals, no low-quality R-CNN matches)."""
    cfg = build_config(family, m)
    if family == "cascade_mask_rcnn":
        for head in cfg.model.roi_head.bbox_head:
            head["reg_decoded_bbox"] = True
            head["loss_bbox"] = dict(type="GIoULoss", loss_weight=10.0)
        cfg.model.rpn_head.loss_bbox = dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0)
        cfg.model.train_cfg.rpn.allowed_border = 0
        cfg.model.train_cfg.rpn_proposal = dict(nms_pre=2000, max_per_img=2000, nms=dict(type="nms", iou_threshold=0.7),
                                                min_bbox_size=0)
        cfg.model.roi_head.stage_loss_weights = [1, 0.5, 0.25]
        for stage, iou in zip(cfg.model.train_cfg.rcnn, (0.5, 0.6, 0.7)):
            stage.assigner.update(pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou, match_low_quality=False)
    return cfg


def _deterministic_choice(gallery: torch.Tensor, num: int, priors: torch.Tensor) -> torch.Tensor:
    """A fixed pick of `num` of `gallery` by a key of each prior's coordinates, not its index (the
    two implementations may order near-tied proposals differently); mixaq's oracle test uses the
    same rule."""
    b = priors[gallery].double()
    key = (b[:, 0] * 0.618 + b[:, 1] * 0.382 + b[:, 2] * 0.271 + b[:, 3] * 0.829) % 17.3
    return gallery[torch.argsort(key, stable=True)[:num]]


def _use_deterministic_sampler() -> None:
    from mmdet.models.task_modules.samplers import RandomSampler

    seen: dict = {}
    for name in ("_sample_pos", "_sample_neg"):
        original = getattr(RandomSampler, name)

        def wrapped(self, assign_result, num_expected, _original=original, **kwargs):  # noqa: ANN001, ANN202
            seen["priors"] = kwargs["bboxes"]
            return _original(self, assign_result, num_expected, **kwargs)

        setattr(RandomSampler, name, wrapped)
    RandomSampler.random_choice = lambda self, gallery, num: _deterministic_choice(gallery, num, seen["priors"])


def run_loss(task: dict) -> None:
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmdet.utils import register_all_modules
    from mmengine.structures import InstanceData

    register_all_modules()
    if task.get("deterministic_sampler"):
        _use_deterministic_sampler()
    cfg = train_config(task["family"], task["model"])
    model = MODELS.build(cfg.model)
    ckpt = torch.load(task["official"], map_location="cpu", weights_only=True)
    state = _convert_official(ckpt["state_dict"])
    model.load_state_dict(state, strict=True)
    dtype = getattr(torch, task.get("dtype", "float32"))
    model.train()
    model.to(dtype)
    batch = torch.load(task["inputs"], map_location="cpu", weights_only=True)
    images = batch["images"].to(dtype)
    samples = []
    for hw, t in zip(batch["img_hw"], batch["targets"]):
        pad = tuple(int(-(-v // 32) * 32) for v in hw)
        ds = DetDataSample(metainfo=dict(img_shape=tuple(hw), pad_shape=pad, ori_shape=tuple(hw),
                                         batch_input_shape=tuple(images.shape[-2:]), scale_factor=(1.0, 1.0)))
        gt = InstanceData()
        gt.bboxes, gt.labels = t["boxes"].to(dtype), t["labels"]
        gt.masks = BitmapMasks(t["masks"].numpy(), int(hw[0]), int(hw[1]))
        ds.gt_instances = gt
        ignored = InstanceData()
        ignored.bboxes, ignored.labels = t["crowd"].to(dtype), torch.zeros(len(t["crowd"]), dtype=torch.long)
        ds.ignored_instances = ignored
        samples.append(ds)
    losses = model.loss(images, samples)
    flat = {k: (sum(v) if isinstance(v, (list, tuple)) else v) for k, v in losses.items()}
    total = sum(v.sum() for k, v in flat.items() if "loss" in k)
    total.backward()
    params = dict(model.named_parameters())
    grads = {name: params[name].grad.detach().clone() for name in task["grads"]}
    torch.save({"losses": {k: v.detach().reshape(()) for k, v in flat.items() if "loss" in k}, "grads": grads},
               task["out"])


def run_backbone(task: dict) -> None:
    from mmdet.models.backbones.swin import SwinTransformer, swin_converter

    kwargs = _swin_kwargs(task["swin"])
    kwargs.pop("type")
    model = SwinTransformer(**kwargs)
    model.eval()  # mmdet's SwinTransformer.train() returns None: no chaining
    state = torch.load(task["weights"], map_location="cpu", weights_only=True)
    converted = {k[len("backbone."):]: v for k, v in swin_converter(state).items()}
    model.load_state_dict(converted, strict=True)
    x = torch.load(task["inputs"], map_location="cpu", weights_only=True)
    with torch.no_grad():
        outs = model(x)
    torch.save([o.contiguous() for o in outs], task["out"])


def run_detect(task: dict) -> None:
    import numpy as np
    import pycocotools.mask as mask_util
    from mmdet.apis import inference_detector, init_detector

    cfg = build_config(task["family"], task["model"])
    model = init_detector(cfg, checkpoint=None, device="cpu")
    ckpt = torch.load(task["checkpoint"], map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.eval()
    results = []
    for path in task["images"]:
        with torch.no_grad():
            pred = inference_detector(model, path).pred_instances
        masks = pred.masks.numpy().astype(np.uint8)  # (N, H, W) bool
        rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0))) if len(masks) else []
        results.append({
            "image": path,
            "boxes": pred.bboxes.tolist(),
            "scores": pred.scores.tolist(),
            "labels": pred.labels.tolist(),
            "masks": [{"size": r["size"], "counts": r["counts"].decode()} for r in rles],
        })
    Path(task["out"]).write_text(json.dumps(results))


def run_convert(task: dict) -> None:
    ckpt = torch.load(task["official"], map_location="cpu", weights_only=True)
    out = dict(ckpt)
    out["state_dict"] = _convert_official(ckpt["state_dict"])
    out.pop("optimizer", None)
    torch.save(out, task["out"])


SWIN_CROP_CONFIG = CONFIG_DIR / "swin" / "mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py"


def run_param_groups(task: dict) -> None:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.optim import DefaultOptimWrapperConstructor

    register_all_modules()
    cfg = train_config(task["family"], task["model"])
    model = MODELS.build(cfg.model)
    wrapper_cfg = Config.fromfile(str(SWIN_CROP_CONFIG)).optim_wrapper.to_dict()
    paramwise = wrapper_cfg.pop("paramwise_cfg", None)
    wrapper = DefaultOptimWrapperConstructor(wrapper_cfg, paramwise)(model)
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in wrapper.optimizer.param_groups:
        for p in group["params"]:
            out[names[id(p)]] = [group["lr"], group["weight_decay"]]
    Path(task["out"]).write_text(json.dumps(out))


def run_pipeline(task: dict) -> None:
    import numpy as np
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    pipeline = [t for t in Config.fromfile(str(SWIN_CROP_CONFIG)).train_pipeline if t["type"] != "PackDetInputs"]
    for t in pipeline:
        t.pop("backend_args", None)
    cats = sorted(json.loads(Path(task["ann"]).read_text())["categories"], key=lambda c: c["id"])
    data = CocoDataset(ann_file=task["ann"], data_prefix=dict(img=task["images"] + "/"), pipeline=pipeline,
                       metainfo=dict(classes=tuple(c["name"] for c in cats)),
                       filter_cfg=dict(filter_empty_gt=True, min_size=32), data_root="")
    calls: list = []
    real = {"choice": np.random.choice, "randint": np.random.randint}

    def recorder(name):  # noqa: ANN001, ANN202
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            value = real[name](*args, **kwargs)
            calls.append([name, [a.tolist() if hasattr(a, "tolist") else a for a in args],
                          value.item() if hasattr(value, "item") else value])
            return value
        return call

    results = []
    np.random.choice, np.random.randint = recorder("choice"), recorder("randint")
    try:
        for index, seed in task["draws"]:
            calls.clear()
            np.random.seed(seed)
            r = data[index]
            results.append({"file_name": Path(r["img_path"]).name, "img": torch.from_numpy(r["img"].copy()),
                            "boxes": r["gt_bboxes"].tensor.clone(), "labels": torch.from_numpy(r["gt_bboxes_labels"]),
                            "ignore": torch.from_numpy(r["gt_ignore_flags"]),
                            "masks": torch.from_numpy(r["gt_masks"].masks.copy()), "calls": list(calls)})
    finally:
        np.random.choice, np.random.randint = real["choice"], real["randint"]
    torch.save(results, task["out"])


def run_batch(task: dict) -> None:
    """Several tasks in one process (mmdet's import costs seconds)."""
    for sub in task["tasks"]:
        KINDS[sub["kind"]](sub)


KINDS = {"backbone": run_backbone, "detect": run_detect, "convert": run_convert, "loss": run_loss, "batch": run_batch,
         "param_groups": run_param_groups, "pipeline": run_pipeline}

if __name__ == "__main__":
    torch.set_num_threads(int(json.loads(Path(sys.argv[1]).read_text()).get("threads", 1)))
    spec = json.loads(Path(sys.argv[1]).read_text())
    KINDS[spec["kind"]](spec)
