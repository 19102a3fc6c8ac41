#!/usr/bin/env bash
# One command for a machine with a GPU, an official Swin Mask R-CNN checkpoint and COCO val2017.
#
#   benchmarks/gpu_check.sh CHECKPOINT COCO_ROOT [OUT_DIR]
#
# COCO_ROOT holds val2017/ and annotations/instances_val2017.json. Runs, in order, on cuda:0:
#  1. the oracle agreement check at the reference test scale 1333x800 on random small models
#     (CPU; needs `make mmdet-venv`, ~15 s with PyPI) -> OUT/oracle.md
#  2. benchmarks.bench_rcnn: float vs uniform W4A8 vs MixA-Q W4A8/A4 50 % on 500 val images
#     (Evaluator end to end: decode workers, inference, COCOeval box + mask AP), then the float
#     model on all 5000 val images -> OUT/bench_rcnn.json
#  3. `mixaq eval` float on val2017 with --save-detections -> OUT/float.json, OUT/detections.json
# Goals (issue 10): val2017 float in <= 5 min on one H200; fake-quant <= 1.3x float time; the
# float box / mask AP at the official README's numbers (box / mask mAP: Swin-T Mask R-CNN 1x
# 43.7 / 39.8, 3x 46.0 / 41.6; Swin-T Cascade Mask R-CNN 3x 50.4 / 43.7).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT="${1:?usage: benchmarks/gpu_check.sh CHECKPOINT COCO_ROOT [OUT_DIR]}"
COCO="${2:?usage: benchmarks/gpu_check.sh CHECKPOINT COCO_ROOT [OUT_DIR]}"
OUT="${3:-runs/gpu_check}"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
IMAGES="$COCO/val2017"
ANN="$COCO/annotations/instances_val2017.json"

"$PY" -m benchmarks.bench_oracle --scale 1333,800 --out "$OUT/oracle.md"
"$PY" -m benchmarks.bench_rcnn --device cuda --checkpoint "$CKPT" --coco-root "$IMAGES" --ann "$ANN" \
    --images 500 --workers 8 --full --out "$OUT/bench_rcnn.json"
"$PY" -m mixaq.search.cli eval --device cuda --loader-workers 8 --checkpoint "$CKPT" --coco-root "$IMAGES" --ann "$ANN" \
    --high-bits float --low-bits float --calib 0 --format json --progress \
    --save-detections "$OUT/detections.json" > "$OUT/float.json"
echo "results in $OUT: oracle.md bench_rcnn.json float.json detections.json"
