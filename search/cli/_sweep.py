"""`mixaq sweep`: Optuna search over precision configurations, measured mAP vs simulated speedup."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from mixaq.models._config import MIX_MODES, OBSERVERS
from mixaq.models.detection._registry import FAMILY_NAMES
from mixaq.simulator._cost import SPEEDUP_KINDS
from mixaq.core._errors import MixaqError

from mixaq.search.space._objectives import OBJECTIVES, parse_objectives
from mixaq.search.space._settings import SAMPLERS

__all__ = ["add_arguments", "run", "add_search_arguments", "build_settings", "check_arguments", "print_summary",
           "execute"]

KNOBS: tuple[str, ...] = ("low", "prune", "act-bits", "weight-bits", "strategy")
_FRONT_ROWS = 25  # front rows printed (a hardware space's front can hold hundreds)


def _knobs(text: str) -> tuple[str, ...]:
    items = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in items if k not in KNOBS]
    if unknown or not items:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(KNOBS)} (comma separated), got {text!r}")
    return items


def _objectives(text: str) -> tuple[str, ...]:
    try:
        return parse_objectives(text)
    except MixaqError as exc:
        # argparse already names the option: "argument --objectives: unknown speed ..."
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--objectives: ").removeprefix("--objectives ")) from None


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated image counts, got {text!r}") from None
    if len(values) < 2 or any(v < 1 for v in values) or any(a >= b for a, b in zip(values, values[1:])):
        raise argparse.ArgumentTypeError(f"expected two or more increasing positive image counts, got {text!r}")
    return values


def _bits_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(sorted({int(b) for b in text.split(",") if b.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _ratios_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({round(float(v), 6) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ratios, got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"ratios must lie in [0, 1], got {text!r}")
    return values


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `mixaq sweep` and `mixaq demo` (what is searched and how)."""
    g = parser.add_argument_group("search")
    g.add_argument("--spec", default="bitfusion", help="accelerator spec: preset name or YAML path (default bitfusion)")
    g.add_argument("--cost", default="bops", choices=SPEEDUP_KINDS,
                   help="simulated cost whose speedup is the second objective (default bops)")
    g.add_argument("--objectives", type=_objectives, default=None,
                   help=f"what to optimize, comma separated from {', '.join(OBJECTIVES)} "
                        "(default map,speedup_<--cost>; with --hw-space map,latency_ms,area_mm2)")
    g.add_argument("--hw-space", default=None, metavar="FILE",
                   help="co-explore hardware: a space file (base spec + knob choices + budgets, docs/search.md) "
                        "or a shipped space name (coexplore); every proposal is scored on every hardware point")
    g.add_argument("--fidelity", type=_counts, default=None, metavar="N1,N2,...",
                   help="multi-fidelity mAP: image counts, ascending (e.g. 64,500; the last is the evaluated set); "
                        "a proposal goes to the next count only if its bootstrap interval could reach the front")
    g.add_argument("--n-trials", type=int, default=30,
                   help="completed trials the study should hold; a resumed sweep runs only the missing ones")
    g.add_argument("--search", type=_knobs, default=("low",),
                   help=f"knobs to search, comma separated from {', '.join(KNOBS)} (default low)")
    g.add_argument("--mode", default="ratio", choices=MIX_MODES,
                   help="per-pair low/prune ratios (paper) or importance thresholds")
    g.add_argument("--ratio-choices", type=_ratios_list, default=None,
                   help="low-bit ratios searched per pair (default 0,0.1,...,0.8)")
    g.add_argument("--prune-choices", type=_ratios_list, default=None,
                   help="pruning ratios searched per pair (default 0,0.1,...,0.8)")
    g.add_argument("--high-act-bits", "--high-bits", type=int, default=8, help="high-branch activation bits (and the reference)")
    g.add_argument("--low-act-bits", "--low-bits", type=int, default=4, help="low-branch activation bits")
    g.add_argument("--weight-bits", type=int, default=4, help="weight bits (and the reference)")
    g.add_argument("--act-bit-choices", type=_bits_list, default=None,
                   help="activation widths searched with --search act-bits (default: the spec's, within 2..8)")
    g.add_argument("--weight-bit-choices", type=_bits_list, default=None,
                   help="weight widths searched with --search weight-bits (default: the spec's, within 2..8)")
    g.add_argument("--max-map-drop", type=float, default=None,
                   help="constraint: mAP >= uniform-high mAP minus this (COCOeval 0-1 scale, e.g. 0.01)")
    g.add_argument("--min-speedup", type=float, default=None, help="constraint: simulated speedup >= this")
    g.add_argument("--sampler", default="nsga2", choices=SAMPLERS, help="Optuna sampler (default nsga2)")
    g.add_argument("--population", type=int, default=10, help="NSGA-II population (TPE: startup trials)")
    g.add_argument("--seed", type=int, default=0,
                   help="sampler seed; trial n draws with a seed derived from (seed, n), in every process")
    g.add_argument("--no-screen", action="store_true",
                   help="evaluate every proposal (no simulator + neighbour screen before paying for mAP)")
    g.add_argument("--screen-tolerance", type=float, default=0.005,
                   help="mAP margin the screen requires before calling a proposal dominated")
    g.add_argument("--baseline-points", type=int, default=2,
                   help="front points that get random/reversed/pruning-only baselines (default 2)")
    e = parser.add_argument_group("evaluation")
    e.add_argument("--checkpoint", default=None, help="detector checkpoint (default: the embedded default model)")
    e.add_argument("--data", default=None, help="COCO-format dataset dir (default: the synthetic val split)")
    e.add_argument("--coco-root", default=None, help="image directory of a COCO-format dataset (with --ann)")
    e.add_argument("--ann", default=None, help="COCO instances json (with --coco-root)")
    e.add_argument("--max-images", type=int, default=None, help="evaluate on a fixed subset of N val images")
    e.add_argument("--calib-images", "--calib", dest="calib_images", type=int, default=None,
                   help="PTQ calibration images (taken from the end, never evaluated); --calib is an alias")
    e.add_argument("--observer", default="minmax", choices=OBSERVERS,
                   help="PTQ calibration of every evaluated configuration (repq, repq_minmax: RepQ-ViT; "
                   "docs/models.md)")
    e.add_argument("--detector", default=None, choices=FAMILY_NAMES, help="force the detector family of --checkpoint")
    e.add_argument("--device", default="auto",
                   help="cpu, cuda, cuda:N or auto (default auto: with --workers N and GPUs, worker i uses GPU i mod n)")
    e.add_argument("--loader-workers", type=int, default=0, help="image-decoding processes per evaluator")
    r = parser.add_argument_group("storage and workers")
    r.add_argument("--storage", default=None,
                   help="Optuna storage URL: sqlite:///FILE, postgresql://USER@HOST/DB, journal:FILE "
                        "(default sqlite:///OUT/study.db)")
    r.add_argument("--study", default="mixaq", help="study name inside the storage (default mixaq)")
    r.add_argument("--workers", type=int, default=1, help="local worker processes sharing the storage")
    r.add_argument("--heartbeat", type=int, default=5, help="seconds between trial heartbeats (RDB storages)")
    r.add_argument("--grace", type=int, default=20,
                   help="seconds without heartbeat before another worker fails and retries a trial")
    r.add_argument("--pick", type=int, default=None,
                   help="completed trial whose per-layer breakdown is drawn (default: auto; see mixaq plot --pick)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_search_arguments(parser)
    parser.add_argument("--out", required=True, help="run directory: tables, plots, default SQLite storage")


def build_settings(args: argparse.Namespace, num_pairs: int) -> Any:
    from mixaq.simulator import load_spec

    from mixaq.search.space._settings import SweepSettings
    from mixaq.search.space._space import SearchSpace

    spec = load_spec(args.spec)
    if args.hw_space is not None:  # the space's precision choices bound the searched widths
        from mixaq.search.hardware._hw_space import load_hw_space

        widths = load_hw_space(args.hw_space).supported_bits()
        spec = dataclasses.replace(spec, min_bits=min(widths), max_bits=max(widths))
    act = args.act_bit_choices or tuple(b for b in spec.supported_act_bits if 2 <= b <= 8)
    wts = args.weight_bit_choices or tuple(b for b in spec.supported_weight_bits if 2 <= b <= 8)
    space = SearchSpace(
        num_pairs=num_pairs, high_act_bits=args.high_act_bits, low_act_bits=args.low_act_bits,
        weight_bits=args.weight_bits, search_act_bits="act-bits" in args.search,
        search_weight_bits="weight-bits" in args.search, act_bit_choices=tuple(act), weight_bit_choices=tuple(wts),
        mode=args.mode, search_low="low" in args.search, search_prune="prune" in args.search,
        search_strategy="strategy" in args.search,
        **({} if args.ratio_choices is None else {"ratio_choices": args.ratio_choices}),
        **({} if args.prune_choices is None else {"prune_choices": args.prune_choices}),
    )
    hw_space = None
    objectives = args.objectives or ()
    if args.hw_space is not None:
        from mixaq.search.hardware._hw_space import load_hw_space

        hw_space = load_hw_space(args.hw_space)
        objectives = objectives or ("map", "latency_ms", "area_mm2")
    return SweepSettings(space=space, spec=args.spec, cost=args.cost, sampler=args.sampler, seed=args.seed,
                         population_size=args.population, max_map_drop=args.max_map_drop,
                         min_speedup=args.min_speedup, screen=not args.no_screen,
                         screen_tolerance=args.screen_tolerance, baseline_points=args.baseline_points,
                         objectives=objectives, hw_space=None if hw_space is None else hw_space.to_dict(),
                         fidelity=args.fidelity or ())


def print_summary(result: Any, out: Path) -> None:
    print(f"study {result.study_name!r} in {result.storage}: {result.n_complete} completed, "
          f"{result.n_pruned} screened out by the simulator/neighbours or surplus, {result.n_failed} failed "
          f"(this run completed {result.n_evaluated_here})")
    objective_cols = [c for c in result.objective_columns if c not in ("ap", "speedup_bops", "speedup_cycles")]
    cols = [c for c in ("number", "ap", "speedup", "speedup_bops", "speedup_cycles", *objective_cols, "spec_name",
                        "label") if c in result.front]
    if len(result.front):
        shown = result.front if len(result.front) <= _FRONT_ROWS else result.front.head(_FRONT_ROWS)
        print("Pareto front:")
        print(shown[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}" if abs(v) >= 1e4 else f"{v:.4f}"))
        if len(shown) < len(result.front):
            print(f"... {len(result.front) - len(shown)} more front points in pareto.csv")
    if result.nearest_infeasible is not None:
        print(result.nearest_infeasible["text"])
    if result.hardware is not None:
        h = result.hardware
        print(f"hardware: {h['points']:,} points scored per proposal ({h['points_per_s']:,.0f} points/s); "
              f"{h['proposals']} proposals scored, {h['evaluations']} mAP evaluations: "
              f"{h['points_per_evaluation']:,.0f} hardware points per mAP evaluation")
    if result.fidelity is not None:
        f = result.fidelity
        print(f"fidelity: {f['evaluations']} evaluations at {f['levels']}: {f['full']} full, {f['stopped']} stopped "
              f"early; {f['images']:,} images evaluated")
    pngs = [p for p in result.outputs if p.suffix == ".png"]
    if pngs:
        print(f"tables and plots in {out.resolve()}:")
        specs = [p for p in result.outputs if p.parent.name == "specs"]
        for p in result.outputs:
            if p not in specs:
                print(f"  {p.name}")
        if specs:
            print(f"  specs/ ({len(specs)} spec files of the front's hardware points)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    print_summary(execute(args, out), out)
    return 0


def execute(args: argparse.Namespace, out: Path) -> Any:
    """Build the evaluator and settings from parsed options and run the sweep into `out`."""
    import os

    from mixaq.search.space._accuracy import EvaluatorFactory
    from mixaq.search.study._storage import default_storage_url, get_storage
    from mixaq.search.study._sweep import run_sweep

    # Every argument is checked before anything is loaded, measured or written (milliseconds).
    options = check_arguments(args, out)
    if args.fidelity is not None:
        args.max_images = args.fidelity[-1]
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or default_storage_url(out)
    _check_pick(args, get_storage(storage, options))
    data = args.coco_root if args.ann else args.data
    if data is None and args.checkpoint is None:
        from mixaq.models.detection import ensure_default_val

        # First use renders the default model's val split: show that, once. Another checkpoint's
        # split depends on its training data, which only loading it tells (the Evaluator does).
        ensure_default_val(progress=not args.no_progress)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    factory = EvaluatorFactory(args.checkpoint, data, args.max_images, args.calib_images, threads, args.ann,
                               observer=args.observer, detector=args.detector, device=args.device,
                               loader_workers=args.loader_workers)
    accuracy = factory()
    settings = build_settings(args, accuracy.arch.num_pairs)
    result = run_sweep(settings, factory, storage, args.study, args.n_trials, workers=args.workers, out_dir=out,
                       progress=not args.no_progress, accuracy=accuracy, pick_trial=args.pick,
                       storage_options=options)
    return result


def check_arguments(args: argparse.Namespace, out: Path) -> Any:
    """One-line `MixaqError` for any bad option, before the model loads; returns the storage options."""
    from mixaq.simulator import load_spec

    from mixaq.search.records._outputs import check_out_dir
    from mixaq.search.study._storage import StorageOptions

    from mixaq.models._device import check_device_name

    for name, least in (("n_trials", 1), ("workers", 1), ("max_images", 1), ("calib_images", 1), ("pick", 0),
                        ("loader_workers", 0)):
        value = getattr(args, name)
        if value is not None and value < least:
            raise MixaqError(f"--{name.replace('_', '-')} must be >= {least}, got {value}")
    check_device_name(args.device)
    options = StorageOptions(heartbeat_interval_s=args.heartbeat, grace_period_s=args.grace)
    if (args.coco_root is None) != (args.ann is None):
        raise MixaqError("--coco-root and --ann go together (images dir + instances json)")
    if args.data is not None and args.coco_root is not None:
        raise MixaqError("give either --data or --coco-root/--ann, not both")
    for flag, path in (("--checkpoint", args.checkpoint), ("--data", args.data), ("--coco-root", args.coco_root),
                       ("--ann", args.ann)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} {path} does not exist")
    check_out_dir(out)
    spec = load_spec(args.spec)
    build_settings(args, num_pairs=1)  # the space and settings validate themselves (pairs: from the model)
    if args.fidelity is not None and args.max_images is not None and args.max_images != args.fidelity[-1]:
        raise MixaqError(f"--fidelity's last count ({args.fidelity[-1]}) is the evaluated set; "
                         f"--max-images {args.max_images} must equal it or be left out")
    if args.hw_space is not None:
        from mixaq.search.hardware._hw_space import load_hw_space

        # Every point of the space is a valid spec; the searched bits are checked per point later.
        load_hw_space(args.hw_space).check_points(args.seed)
        return options
    for flag, bits in (("--high-act-bits", args.high_act_bits), ("--low-act-bits", args.low_act_bits),
                       ("--weight-bits", args.weight_bits)):
        spec.check_bits(flag, bits)
    for flag, choices in (("--act-bit-choices", args.act_bit_choices), ("--weight-bit-choices", args.weight_bit_choices)):
        if choices is not None:
            spec.check_bits(flag, list(choices))
    return options


def _check_pick(args: argparse.Namespace, storage: Any) -> None:
    """`--pick N` names a trial the study already completed (a sweep cannot know future numbers;
    after a sweep, `mixaq plot --pick N` redraws any trial)."""
    if args.pick is None:
        return
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
        done = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    except KeyError:
        done = set()
    if args.pick not in done:
        raise MixaqError(f"--pick {args.pick}: study {args.study!r} has no completed trial {args.pick} yet; "
                         f"run without --pick, then redraw with `mixaq plot --pick N`")
