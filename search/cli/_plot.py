"""`mixaq plot`: redraw a study's tables and plots from any storage."""
from __future__ import annotations

import argparse
from pathlib import Path

from mixaq.core._errors import MixaqError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=None, help="Optuna storage URL the sweep used")
    parser.add_argument("--study", default="mixaq", help="study name (default mixaq)")
    parser.add_argument("--out", required=True, help="directory for the CSV tables and PNG/SVG plots")
    parser.add_argument("--pick", type=int, default=None, help="trial whose per-layer breakdown is drawn")
    parser.add_argument("--compare", nargs="+", default=None, metavar="STUDY",
                        help="overlay the fronts of several studies on one figure: run directories (with "
                             "study.db) or storage URLs, each optionally ending in #STUDY_NAME")
    parser.add_argument("--labels", default=None, help="comma-separated legend names for --compare")
    parser.add_argument("--hv-ref", default=None, metavar="OBJ=VALUE,...",
                        help="hypervolume reference point per objective: a number or uniform_low/uniform_high "
                             "(default: accuracy = the uniform-low baseline's, speedups 1, costs the reference's)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="a progress bar while the figures render")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="--compare studies measured on different models, image sets or specs anyway "
                             "(the figure says what differs)")


def run(args: argparse.Namespace) -> int:
    import optuna
    from optuna.trial import TrialState

    from mixaq.search.records._outputs import check_out_dir, check_out_owner, output_owner, write_outputs
    from mixaq.search.study._storage import get_storage, redact_url, storage_errors
    from mixaq.search.study._sweep import quiet_optuna

    if args.compare is not None:
        return _compare(args)
    if args.allow_mixed:
        raise MixaqError("--allow-mixed goes with --compare A B ...")
    if args.storage is None:
        raise MixaqError("give --storage URL (one study) or --compare A B ... (several)")
    if args.pick is not None and args.pick < 0:
        raise MixaqError(f"--pick must be a trial number (>= 0), got {args.pick}")
    check_out_dir(args.out)
    owner = output_owner(args.storage, args.study)
    check_out_owner(args.out, owner)
    from mixaq.search.records._hv_reference import parse_hv_ref

    parse_hv_ref(args.hv_ref)  # a malformed value is one line before the study loads
    with quiet_optuna(), storage_errors(args.storage):
        storage = get_storage(args.storage, create=False)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if args.study not in names:
            raise MixaqError(f"study {args.study!r} not found in {redact_url(args.storage)!r} "
                             f"(studies: {', '.join(names) or 'none'})")
        study = optuna.load_study(study_name=args.study, storage=storage)
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise MixaqError(f"study {args.study!r} has no completed trials yet: nothing to plot")
        paths = write_outputs(study, args.out, pick_trial=args.pick, owner=owner, hv_ref=parse_hv_ref(args.hv_ref),
                              progress=args.progress)
    print(f"wrote {len(paths)} files to {Path(args.out).resolve()}:")
    for p in paths:
        print(f"  {p.name}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from mixaq.search.records._compare import build_compare, compare_tables
    from mixaq.search.records._plots import render_compare
    from mixaq.search.study._sweep import quiet_optuna

    if args.storage is not None:
        raise MixaqError("--compare names its studies itself; leave out --storage")
    from mixaq.search.records._outputs import check_out_dir, check_out_owner, staged_outputs
    from mixaq.search.study._storage import redact_url, storage_errors

    check_out_dir(args.out)
    owner = {"compare": [redact_url(r) for r in args.compare]}
    check_out_owner(args.out, owner)
    from mixaq.search.records._hv_reference import parse_hv_ref

    labels = None if args.labels is None else [x.strip() for x in args.labels.split(",")]
    with quiet_optuna(), storage_errors(" ".join(args.compare)):
        record = build_compare(args.compare, labels, allow_mixed=args.allow_mixed, hv_ref=parse_hv_ref(args.hv_ref))
    out = Path(args.out)

    def write(stage: Path) -> list[Path]:
        paths = []
        for name, df in compare_tables(record).items():
            df.to_csv(stage / name, index=False)
            paths.append(stage / name)
        return paths + render_compare(record, stage)

    paths = staged_outputs(out, owner, write)
    for what in record.mixed:
        print(f"note: mixed studies (--allow-mixed), {what}")
    for label, rec in zip(record.labels, record.records):
        print(f"{label}: {len(rec.front)} front points, hypervolume "
              f"{rec.hypervolume['hypervolume'].iloc[-1] if len(rec.hypervolume) else 0.0:.6g}")
    print(f"wrote {len(paths)} files to {out.resolve()}:")
    for p in paths:
        print(f"  {p.name}")
    return 0
