"""docs/bad_inputs.md says what `mixaq` says now: the table lists exactly the cases that
benchmarks/bad_inputs.py defines, every row is a one-line error with exit 2 (or marked accepted),
and every row but the slow ones is rerun here and must match word for word (the torch rows
add ≈5 s; a stale row once went unnoticed when only the torch-free ones were rerun)."""
from __future__ import annotations

import sys

import pytest

from benchmarks.bad_inputs import CASES, DOC, Scratch, parse, row_key, run_case

ROWS = parse(DOC.read_text())


def test_the_table_lists_exactly_the_defined_cases():
    keys = [row_key(c) for c in CASES]
    assert len(set(keys)) == len(keys), "two cases share a description and command line"
    missing, extra = set(keys) - set(ROWS), set(ROWS) - set(keys)
    assert not missing and not extra, (f"docs/bad_inputs.md is stale: rerun `python -m benchmarks.bad_inputs` "
                                       f"(missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]})")
    assert len(CASES) >= 80


def test_every_row_is_one_line_with_exit_2_or_accepted_on_purpose():
    for case in CASES:
        _, code, message = ROWS[row_key(case)]
        if "(accepted)" in case.what:
            assert code == 0, case.what
            continue
        known = case.command in ("gemm", "cost", "data", "train", "eval", "qat", "adapt", "sweep", "plot", "demo")
        prefix = f"mixaq {case.command}" if known else "mixaq"
        assert code == 2 and message.startswith(f"{prefix}") and ": error: " in message, (case.what, message)
        assert "⏎" not in message and "Traceback" not in message, case.what


@pytest.mark.parametrize("case", [c for c in CASES if not c.slow], ids=lambda c: c.what)
def test_rows_are_current(case, tmp_path_factory):
    scratch = _scratch(tmp_path_factory)
    code, text = run_case(case, scratch)
    _, want_code, want = ROWS[row_key(case)]
    assert (code, text.replace("|", "\\|")) == (want_code, want), "rerun `python -m benchmarks.bad_inputs`"


_SCRATCH: dict[str, Scratch] = {}


def _scratch(factory) -> Scratch:  # one scratch directory for the module: fixtures are made once
    if "s" not in _SCRATCH:
        _SCRATCH["s"] = Scratch(factory.mktemp("bad"))
    return _SCRATCH["s"]


def test_sweep_and_demo_reject_bad_options_before_importing_torch():
    """Checked in a fresh interpreter: every bad sweep/demo option is reported before the model (and
    torch) loads, let alone a trial runs."""
    import subprocess

    code = ("import sys, tempfile, pathlib\n"
            "from benchmarks.bad_inputs import CASES, Scratch, run_case\n"
            "s = Scratch(pathlib.Path(tempfile.mkdtemp()))\n"
            "for c in CASES:\n"
            "    if c.command in ('sweep', 'demo') and not c.slow:\n"
            "        run_case(c, s)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
