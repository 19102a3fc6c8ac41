"""Every `mixaq <command> --help` and argument error comes back before torch (or timm, optuna,
matplotlib, pandas) is imported; the packages' lazy exports resolve to the modules that define them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mixaq.search.cli import COMMANDS

HEAVY = ("torch", "timm", "torchvision", "optuna", "matplotlib", "pycocotools", "pandas")

# One interpreter runs every command's --help and a bad flag, and reports what each one imported.
_PROBE = """
import contextlib, io, json, sys
from mixaq.search.cli import COMMANDS, main
heavy = {heavy!r}
report = {{}}
for name in COMMANDS:
    for argv in ([name, "--help"], [name, "--no-such-flag"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        report[" ".join(argv)] = {{"code": code, "out": out.getvalue(), "err": err.getvalue(),
                                  "heavy": sorted(m for m in heavy if m in sys.modules)}}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def help_report() -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_and_argument_errors_do_not_import_torch(help_report, command):
    shown = help_report[f"{command} --help"]
    assert shown["code"] == 0 and f"usage: mixaq {command}" in shown["out"]
    assert shown["heavy"] == [], f"`mixaq {command} --help` imported {shown['heavy']}"
    bad = help_report[f"{command} --no-such-flag"]
    assert bad["code"] == 2 and f"mixaq {command}: error:" in bad["err"]
    assert bad["heavy"] == [], f"`mixaq {command} --no-such-flag` imported {bad['heavy']}"


def test_packages_import_without_torch():
    probe = ("import sys, mixaq.models, mixaq.models.detection, mixaq.models.qat, mixaq.search, mixaq.simulator\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["mixaq.core", "mixaq.simulator", "mixaq.models", "mixaq.models.data",
                                     "mixaq.models.detection", "mixaq.models.evaluation", "mixaq.models.qat",
                                     "mixaq.search", "mixaq.search.study", "mixaq.search.space",
                                     "mixaq.search.fidelity", "mixaq.search.hardware", "mixaq.search.records"])
def test_lazy_exports_resolve_to_their_defining_module(package):
    import importlib

    pkg = importlib.import_module(package)
    assert sorted(pkg.__all__) == sorted(dir(pkg))
    where = {n: (package + m if m.startswith(".") else m) for n, m in pkg._EXPORTS.items()}
    for name in pkg.__all__:
        value = getattr(pkg, name)
        module = getattr(value, "__module__", None)
        if module is not None and not isinstance(value, (tuple, dict)):
            # Defined in the module the table names, or (one definition, another public name, e.g.
            # search's AccuracyResult = models' EvalResult) a mixaq module that defines it under its own name.
            defined_there = getattr(importlib.import_module(module), getattr(value, "__name__", name), None) is value
            assert module.startswith("mixaq.") and defined_there, (name, module)
            assert module == where[name] or getattr(importlib.import_module(where[name]), name) is value, (name, module)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        getattr(pkg, "no_such_name")  # noqa: B009 (the lookup must fail)


@pytest.mark.parametrize("name", ["eval", "cost", "adapt", "sweep"])
def test_activation_bit_flags_have_both_spellings(name):
    """`--high-bits` and `--high-act-bits` (and the low ones) are one option on every command that
    takes them, so a flag copied from one command's docs works on the others."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
    options = parser._option_string_actions
    for level in ("high", "low"):
        short, long = options[f"--{level}-bits"], options[f"--{level}-act-bits"]
        assert short is long
        required = ["--out", "o"] if "--out" in options and options["--out"].required else []
        spelled = [parser.parse_args([*required, flag, "6"]) for flag in (f"--{level}-bits", f"--{level}-act-bits")]
        assert spelled[0] == spelled[1] and getattr(spelled[0], short.dest) == 6
