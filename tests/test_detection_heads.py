"""Every configurable head trains a step and predicts class indices of the dataset."""
from __future__ import annotations

import pytest
import torch

from mixaq.models import convert_swin, get_record, reset_record, set_mix, MixConfig
from mixaq.models.data._coco import SyntheticStream, collate
from mixaq.models.detection._detector import HEADS, DetectorConfig, build_detector


@pytest.mark.parametrize("head", sorted(HEADS))
def test_head_trains_and_predicts(head):
    torch.manual_seed(0)
    config = DetectorConfig(arch="swin_nano", image_size=64, head=head, fpn_channels=32, head_convs=1,
                            out_indices=(0, 1), score_thresh=0.0)
    model = build_detector(config)
    images, targets = collate([SyntheticStream(0, 4, (64, 64))[i] for i in range(2)])
    for t in targets:
        t["labels"] = t["labels"] + model.label_offset
    model.train()
    losses = model(images, targets)
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.backbone.body.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)  # the loss reaches the Swin backbone
    model.eval()
    with torch.no_grad():
        out = model(images)
    labels = torch.cat([o["labels"] for o in out]) - model.label_offset
    assert len(labels) and labels.min() >= 0 and labels.max() < config.num_classes


def test_converted_detector_records_every_swin_block():
    config = DetectorConfig(arch="swin_micro", image_size=128, fpn_channels=32, head_convs=1)
    model = convert_swin(build_detector(config)).eval()
    set_mix(model, MixConfig(low_ratios=0.5))
    reset_record(model)
    with torch.no_grad():
        model([torch.rand(3, 128, 128), torch.rand(3, 128, 128)])
    record = get_record(model)
    assert record.n_images == 2 and record.n_blocks == config.swin_arch.num_blocks
    # timm's own window counts for a 128 px input
    assert (record.n_windows[0] == config.swin_arch.windows_per_block((128, 128))).all()
