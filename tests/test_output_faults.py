"""Data-loss faults: after each, no earlier result is lost or mixed with another study's.

- a journal storage whose last line was cut (a crash mid-write) is repaired before a writer appends;
- a write that fails halfway (a full disk) leaves the earlier outputs as they were;
- `--out D` holding another study's outputs is refused before any work (sweep, plot, plot --compare).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, get_storage, run_sweep
from mixaq.search.cli import main

SETTINGS = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _digests(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def _complete(url: str, name: str) -> dict[int, dict]:
    study = optuna.load_study(study_name=name, storage=get_storage(url, create=False))
    return {t.number: t.params for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}


@pytest.mark.parametrize("cut", ["mid_record", "before_newline"])
def test_a_journal_cut_mid_write_is_repaired_before_appending(tmp_path, cut, capsys):
    url = f"journal:{tmp_path / 'study.log'}"
    run_sweep(SETTINGS, SyntheticAccuracy(), url, "s", 3, progress=False)
    before = _complete(url, "s")
    path = tmp_path / "study.log"
    data = path.read_bytes()
    assert data.endswith(b"\n")
    # A crash mid-write: the first bytes of one more record, or a whole record without its newline.
    tail = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    path.write_bytes(data + (tail[: len(tail) // 2] if cut == "mid_record" else tail))
    capsys.readouterr()
    run_sweep(SETTINGS, SyntheticAccuracy(), url, "s", 5, progress=False)
    warning = capsys.readouterr().err
    assert "cut mid-write" in warning or "no final newline" in warning, warning
    after = _complete(url, "s")
    assert len(after) >= 5
    assert all(after[n] == params for n, params in before.items())  # nothing earlier lost or changed
    for line in path.read_bytes().splitlines():  # every line is a record again
        assert line.startswith(b"{") and line.endswith(b"}")


def test_plot_refuses_a_journal_reader_repair(tmp_path):
    """Readers never write: `plot` on a cut journal reads what is whole and leaves the file alone."""
    url = f"journal:{tmp_path / 'study.log'}"
    run_sweep(SETTINGS, SyntheticAccuracy(), url, "mixaq", 2, progress=False)
    path = tmp_path / "study.log"
    path.write_bytes(path.read_bytes() + b'{"op_code": 5, "worker')
    before = path.read_bytes()
    code, _, err = _run(["plot", "--out", str(tmp_path / "plots"), "--storage", url])
    assert code == 0, err
    assert path.read_bytes() == before


@pytest.fixture()
def two_studies(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    run_sweep(SETTINGS, SyntheticAccuracy(), url, "a", 3, progress=False)
    run_sweep(SETTINGS, SyntheticAccuracy(), url, "b", 3, progress=False)
    return url


def test_a_write_failing_halfway_leaves_the_earlier_outputs_intact(tmp_path, two_studies, monkeypatch):
    out = tmp_path / "plots"
    assert _run(["plot", "--out", str(out), "--storage", two_studies, "--study", "a"])[0] == 0
    before = _digests(out)
    assert "pareto.png" in before and "trials.csv" in before
    import mixaq.search.records._outputs as outputs

    real = outputs.render_plots

    def full_disk(record, stage, **_):  # the tables were written, then the disk filled up mid-plot
        paths = real(record, stage)
        paths[1].write_bytes(paths[1].read_bytes()[:10])
        raise OSError(errno.ENOSPC, "No space left on device", str(paths[1]))

    monkeypatch.setattr(outputs, "render_plots", full_disk)
    code, _, err = _run(["plot", "--out", str(out), "--storage", two_studies, "--study", "a", "--pick", "1"])
    assert code == 2 and err.count("\n") == 1 and "No space left" in err, err
    assert _digests(out) == before  # nothing replaced, nothing truncated, no staging left behind


def test_out_holding_another_studys_outputs_is_refused(tmp_path, two_studies, monkeypatch):
    out = tmp_path / "plots"
    assert _run(["plot", "--out", str(out), "--storage", two_studies, "--study", "a"])[0] == 0
    before = _digests(out)
    code, _, err = _run(["plot", "--out", str(out), "--storage", two_studies, "--study", "b"])
    assert code == 2 and "holds the outputs of study 'a'" in err and err.count("\n") == 1, err
    code, _, err = _run(["plot", "--out", str(out), "--compare", f"{two_studies}#a", f"{two_studies}#b"])
    assert code == 2 and "holds the outputs of study 'a'" in err, err
    # The same study, its storage spelled another way (relative path): allowed, redrawn in place.
    monkeypatch.chdir(tmp_path)
    rel = "sqlite:///studies.db"
    code, _, err = _run(["plot", "--out", str(out), "--storage", rel, "--study", "a"])
    assert code == 0, err
    assert set(_digests(out)) == set(before)


def test_sweep_into_another_studys_run_directory_is_refused_before_any_trial(tmp_path):
    out = tmp_path / "run"
    url = f"sqlite:///{out / 'study.db'}"
    out.mkdir()
    run_sweep(SETTINGS, SyntheticAccuracy(), url, "first", 3, out_dir=out, progress=False)
    before = _digests(out)
    from mixaq.simulator import MixaqError

    with pytest.raises(MixaqError, match="holds the outputs of study 'first'"):
        run_sweep(SETTINGS, SyntheticAccuracy(), url, "other", 3, out_dir=out, progress=False)
    assert {k: v for k, v in _digests(out).items() if not k.startswith("study.db")} == \
        {k: v for k, v in before.items() if not k.startswith("study.db")}
    names = [s.study_name for s in optuna.get_all_study_summaries(get_storage(url, create=False))]
    assert names == ["first"]  # refused before the other study was even created
    code, _, err = _run(["sweep", "--out", str(out), "--no-progress", "--study", "other"])
    assert code == 2 and "holds the outputs of study 'first'" in err, err


@pytest.mark.parametrize("step", [7, 613])
def test_plot_on_a_damaged_study_database_is_one_line_and_writes_nothing(tmp_path, step):
    """Random bytes inside study.db: `plot` (a reader, the file opened read-only) says so in one line
    and the file is byte for byte what it was (it used to fail inside a commit)."""
    import random

    db = tmp_path / "study.db"
    run_sweep(SETTINGS, SyntheticAccuracy(), f"sqlite:///{db}", "mixaq", 4, progress=False)
    data = bytearray(db.read_bytes())
    rng = random.Random(1)
    for i in range(4096, len(data), step):  # pages after the first (the header and schema) damaged
        data[i] = rng.randrange(256)
    db.write_bytes(bytes(data))
    before = hashlib.sha1(db.read_bytes()).hexdigest()
    code, _, err = _run(["plot", "--out", str(tmp_path / "plots"), "--storage", f"sqlite:///{db}"])
    assert code == 2 and err.count("\n") == 1, err
    assert "cannot be read" in err or "is not an SQLite database (" in err, err
    assert hashlib.sha1(db.read_bytes()).hexdigest() == before
