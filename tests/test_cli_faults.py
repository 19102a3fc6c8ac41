"""Faults around the command line itself: outputs that cannot be written are found before the work,
a closed pipe, Ctrl-C inside a trial, a full disk deep inside a library: one line each (or silence)."""
from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixaq.search.cli import main

REPO = Path(__file__).resolve().parent.parent


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


@pytest.mark.parametrize("argv, needle", [
    (["data", "synth", "--out", "{T}/synth", "--seed", "-1"], "--seed must be an integer"),
    (["data", "synth", "--out", "{T}/synth", "--size", "200000"], "--size must be <= 4096"),
    (["eval", "--max-images", "1", "--save-detections", "/dev/full"], "not a regular file"),
    (["eval", "--max-images", "1", "--save-detections", "/proc/mixaq_x.json"], "cannot write into '/proc'"),
    (["sweep", "--out", "/proc/mixaq_run", "--no-progress"], "cannot write into '/proc'"),
    (["plot", "--out", "/proc/mixaq_plots", "--storage", "sqlite:///{T}/none.db"], "cannot write into '/proc'"),
])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, argv, needle):
    code, err = _run([a.replace("{T}", str(tmp_path)) for a in argv])
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "synth").exists()  # nothing was started (an empty images/ used to be left)


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.run(f"{sys.executable} -m mixaq.search.cli cost --image 224 | head -c 10", shell=True,
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_ctrl_c_inside_a_trial_logs_no_traceback(capsys):
    """Optuna logs "Trial n failed" with the KeyboardInterrupt's traceback before re-raising it;
    inside quiet_optuna the user sees no traceback (the CLI then prints "interrupted")."""
    import optuna

    from mixaq.search.study._sweep import quiet_optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with quiet_optuna():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            logging.getLogger("optuna.study._optimize").warning("Trial 3 failed", exc_info=sys.exc_info())
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out


def test_a_full_disk_deep_inside_a_library_is_one_line(monkeypatch):
    """Optuna replaces the OSError of a full disk by `AssertionError: Should not reach.`; the cause
    chain still says ENOSPC, and that is what the user reads."""
    import mixaq.search.cli._plot as plot

    def run(args):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise AssertionError("Should not reach.")  # noqa: B904 (what Optuna does)

    monkeypatch.setattr(plot, "run", run)
    code, err = _run(["plot", "--out", "x"])
    assert code == 2 and "the disk is full" in err and err.count("\n") == 1, err


def test_a_file_named_like_a_preset_never_replaces_it(tmp_path, monkeypatch):
    """The rule (docs/simulator.md): a bare name is a preset; a path needs a `/` or `.yaml`. A 50 MHz
    spec saved as ./bitfusion, or a directory ./int8_systolic, changes nothing until named as a path."""
    import yaml

    from mixaq.simulator import load_spec

    slow = load_spec("bitfusion").to_mapping() | {"frequency_mhz": 50.0}
    monkeypatch.chdir(tmp_path)
    Path("bitfusion").write_text(yaml.safe_dump(slow))
    Path("int8_systolic").mkdir()
    Path("swin_t").write_text("embed_dim: 8\ndepths: [2]\nnum_heads: [1]\n")
    assert load_spec("bitfusion").frequency_mhz == 500.0
    assert load_spec("int8_systolic").name == "int8_systolic"
    assert load_spec("./bitfusion").frequency_mhz == 50.0
    code, err = _run(["cost", "--spec", "bitfusion", "--arch", "swin_t", "--image", "224"])
    assert code == 0, err
    code, err = _run(["cost", "--spec", "nosuch"])
    assert code == 2 and "not a file and not a preset" in err
    Path("mine").write_text(yaml.safe_dump(slow))
    code, err = _run(["cost", "--spec", "mine"])
    assert code == 2 and "to use the file write ./mine" in err, err
