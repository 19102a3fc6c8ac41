"""Multi-fidelity accuracy: the bootstrap of COCO AP over images against pycocotools itself, and the
promotion rule of `--fidelity` on the analytic stand-in objective."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import optuna
import pytest

from mixaq.models.evaluation._bootstrap import bootstrap_ap, weighted_ap
from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.records._record import build_record
from mixaq.search.study._storage import get_storage
from mixaq.simulator import MixaqError, get_arch

NANO = get_arch("swin_nano")


def _coco_eval(tmp_path, n_images=24, seed=0):
    """A COCO ground truth of random boxes in 3 categories and detections that jitter them, with
    misses and false positives, evaluated by pycocotools (no images needed)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "width": 200, "height": 200, "file_name": f"{i}.png"})
        for _ in range(rng.integers(0, 6)):
            x, y, w, h = rng.uniform(0, 150, 2).tolist() + rng.uniform(4, 50, 2).tolist()
            cat = int(rng.integers(1, 4))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
            if rng.random() < 0.8:  # found, with some box error
                jitter = rng.normal(0, 0.15 * min(w, h), 4)
                dets.append([i, x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3], rng.uniform(0.3, 1), cat])
        for _ in range(rng.integers(0, 4)):  # false positives
            dets.append([i, *rng.uniform(0, 150, 2), *rng.uniform(4, 50, 2), rng.uniform(0, 0.8), int(rng.integers(1, 4))])
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": c, "name": str(c)} for c in (1, 2, 3)]}))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
        dt = gt.loadRes(np.asarray(dets, dtype=float))

        def evaluate(ids):
            ev = COCOeval(gt, dt, iouType="bbox")
            ev.params.imgIds = list(ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            return ev
    return evaluate, [im["id"] for im in images]


def test_weighted_ap_reproduces_cocoeval_on_the_set_and_on_subsets(tmp_path):
    evaluate, ids = _coco_eval(tmp_path)
    ev = evaluate(ids)
    assert weighted_ap(ev, np.ones(len(ids)))[0] == pytest.approx(ev.stats[0], abs=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(5):  # 0/1 weights are COCOeval on that subset of images
        subset = sorted(rng.choice(ids, size=10, replace=False).tolist())
        w = np.isin(sorted(ids), subset).astype(float)
        assert weighted_ap(ev, w)[0] == pytest.approx(evaluate(subset).stats[0], abs=1e-12)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible(tmp_path):
    evaluate, ids = _coco_eval(tmp_path, n_images=40, seed=3)
    ev = evaluate(ids)
    lo, hi = bootstrap_ap(ev, 200, seed=0)
    assert lo < ev.stats[0] < hi and hi - lo < 0.5
    assert bootstrap_ap(ev, 200, seed=0) == (lo, hi)


def _fidelity_study(tmp_path, fidelity, n_trials=16):
    s = SweepSettings(space=SearchSpace(num_pairs=NANO.num_pairs, search_prune=True, search_act_bits=True),
                      spec="bitfusion", population_size=4, seed=1, fidelity=fidelity, max_map_drop=0.05,
                      baseline_points=0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(s, SyntheticAccuracy(val_images=500), url, "f", n_trials, progress=False)
    study = optuna.load_study(study_name="f", storage=get_storage(url))
    return study, build_record(study)


def test_fidelity_stops_hopeless_proposals_early_and_keeps_them_off_the_front(tmp_path):
    study, rec = _fidelity_study(tmp_path, (24, 500))
    done = rec.trials[rec.trials["state"] == "COMPLETE"]
    evaluated = done[done["outcome"] == "evaluated"]
    low = evaluated[~evaluated["fidelity_top"].astype(bool)]
    full = evaluated[evaluated["fidelity_top"].astype(bool)]
    assert len(low) > 0 and len(full) > 0  # some stopped at 24 images, some went on
    # Each evaluated proposal pays 24 images, those promoted 500 more, and uniform-high on the 24
    # images (the paired reference) is paid once, by the trial that first needed it.
    assert done["images_evaluated"].sum() == 24 * len(evaluated) + 500 * len(full) + 24
    assert set(low["images_evaluated"]) <= {24, 48} and set(full["images_evaluated"]) <= {524, 548}
    assert (low["fidelity"] == 24).all() and low["ap_ci_high_at_24"].notna().all()
    # A stopped proposal reports the paired full-set estimate: uniform-high's full mAP plus its
    # difference to uniform-high on the same 24 images; it is never on the front.
    from mixaq.search.space._accuracy import AccuracyResult

    ref_full = study.user_attrs["mixaq.baseline.uniform_high"]
    ref_sub = AccuracyResult.from_dict(study.user_attrs[f"mixaq.map.{ref_full['config_key']}@24"])
    np.testing.assert_allclose(low["ap"], ref_full["ap"] + (low["ap_at_24"] - ref_sub.ap), rtol=1e-12)
    assert not done.loc[~done["fidelity_top"].astype(bool), "on_front"].any()
    # The subset estimates are cached under their own key; full results under the plain one.
    keys = [k for k in study.user_attrs if k.startswith("mixaq.map.")]
    assert any(k.endswith("@24") for k in keys) and any("@" not in k for k in keys)
    assert len(ref_sub.ap_boot) == 100  # the resamples the paired comparisons use


def test_fidelity_settings_are_checked():
    space = SearchSpace(num_pairs=NANO.num_pairs)
    for bad in ((64,), (64, 64), (500, 64), (0, 10)):
        with pytest.raises(MixaqError, match="--fidelity needs two or more increasing") as err:
            SweepSettings(space=space, fidelity=bad)
        assert "\n" not in str(err.value)
    assert SweepSettings(space=space, fidelity=[64, 500]).fidelity == (64, 500)
