"""The default model's `eval.json`: three `mixaq eval --format json` runs on its val split, one file.

    python -m benchmarks.eval_default [--checkpoint C] [--out models/detection/default/eval.json]

float, uniform W4A8 and MixA-Q W4 A8/A4 with half of every block pair's windows low-bit (importance
selection), min-max activation observers, 500 evaluation images + 32 calibration images.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

RUNS = {
    "float": ["--high-bits", "float", "--low-bits", "float"],
    "uniform_w4a8": ["--high-bits", "8", "--low-bits", "8", "--weight-bits", "4"],
    "mixaq_w4a8a4_low50_importance": ["--high-bits", "8", "--low-bits", "4", "--weight-bits", "4",
                                      "--low-ratio", "0.5", "--strategy", "importance"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_default", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the embedded default model")
    parser.add_argument("--out", default=None, help="JSON file to write (default: print)")
    parser.add_argument("--threads", default="1")
    args = parser.parse_args(argv)

    from mixaq.search.cli import main as mixaq

    common = ["--format", "json", "--observer", "minmax", "--threads", args.threads]
    if args.checkpoint:
        common += ["--checkpoint", args.checkpoint]
    results = {}
    for name, flags in RUNS.items():
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            status = mixaq(["eval", *common, *flags])
        if status != 0:
            print(f"mixaq eval {' '.join(flags)} failed (exit {status})", file=sys.stderr)
            return status
        results[name] = json.loads(buffer.getvalue())
        if not args.checkpoint:  # the absolute path of whoever ran it means nothing to a reader
            results[name]["checkpoint"] = "embedded default (models/detection/default/model.pt)"
        print(f"{name}: AP {results[name]['ap']:.4f}", flush=True)
    text = json.dumps(results, indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
