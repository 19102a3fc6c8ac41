"""No storage password reaches the user's screen or a written file: one redaction (`redact_url`) for
every URL that is printed, put into an error, a table or a plot; and names read from files never
become paths outside the output directory."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.study._storage import redact_text, redact_url
from mixaq.search.cli import main

REPO = Path(__file__).resolve().parent.parent

# Every form of user-info and secret query we know of; each password is distinct so a leak names its form.
URLS = {
    "postgresql://u:PWplain@127.0.0.1:1/db": "PWplain",
    "postgresql://:PWnouser@127.0.0.1:1/db": "PWnouser",
    "postgresql://u:PWat1@PWat2@127.0.0.1:1/db": ("PWat1", "PWat2"),
    "postgresql://u:PW/slash@127.0.0.1:1/db": "PW/slash",
    "postgresql://u@127.0.0.1:1/db?user=u&password=PWquery": "PWquery",
    "postgresql://u@127.0.0.1:1/db?sslpassword=PWssl&application_name=x": "PWssl",
    "postgresql://u:PWnodb@127.0.0.1:1": "PWnodb",
    "postgresql+psycopg2://u:PWdriver@127.0.0.1:1/db": "PWdriver",
    "mysql://u:PWmysql@127.0.0.1:1/db": "PWmysql",
    "mysql+pymysql://:PWmysql2@127.0.0.1:1": "PWmysql2",
}


def _secrets(value) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def _all_secrets() -> list[str]:
    """Passwords of URLs used here and anywhere in the test suite / bad-input cases (grep of the sources)."""
    found = {s for v in URLS.values() for s in _secrets(v)}
    for path in [*REPO.glob("tests/*.py"), REPO / "benchmarks" / "bad_inputs.py"]:
        text = path.read_text()
        for m in re.finditer(r"(?:postgresql|mysql)[a-z0-9+]*://[^:/@\s'\"]*:([^@\s'\"{}]+)@", text):
            found.add(m.group(1))
        for m in re.finditer(r"(?:postgresql|mysql)[a-z0-9+]*://\S*?[?&][a-z]*password=([^&\s'\"]+)", text):
            found.add(m.group(1))
    found.discard("***")
    return sorted(found)


def test_the_grep_finds_the_passwords_of_the_bad_input_cases():
    assert {"secret", "pw-nouser", "pw1", "pw-query", "pw-mysql", "pw-compare"} <= set(_all_secrets())


@pytest.mark.parametrize("url", list(URLS))
def test_redact_url_hides_every_form_of_secret(url):
    shown = redact_url(url)
    for secret in _secrets(URLS[url]):
        assert secret not in shown, shown
        assert secret not in redact_text(f"cannot open '{url}': refused")
    assert shown.startswith(url.split("://")[0] + "://")
    assert "127.0.0.1" in shown  # the host stays: the user must see where it went


def test_redact_url_leaves_file_urls_alone():
    for url in ("sqlite:////tmp/a@b/study.db", "journal:/tmp/x.log", "study.db"):
        assert redact_url(url) == url


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return int(code), out.getvalue() + err.getvalue()


def _written(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("redact")
    settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
    run_sweep(settings, SyntheticAccuracy(), f"sqlite:///{d / 'study.db'}", "s2", 3, progress=False)
    return d / "study.db"


def test_no_password_in_any_printed_or_written_string(tmp_path, study_db, monkeypatch):
    """Every command path that prints a storage URL, with every URL form: the refused server (sweep,
    plot), the "no such study" of --compare, and a successful --compare whose URLs name no database
    (its labels go into stdout, both CSVs and both SVGs). The successful case maps the server URLs
    onto a local SQLite study, so it runs without a server."""
    import mixaq.search.study._storage as storage_mod

    real = storage_mod.get_storage
    outputs = []
    for url in URLS:
        outputs.append(_run(["sweep", "--out", str(tmp_path / "sweep"), "--no-progress", "--storage", url])[1])
        outputs.append(_run(["plot", "--out", str(tmp_path / "plots"), "--storage", url])[1])
        outputs.append(_run(["plot", "--out", str(tmp_path / "plots"), "--compare", f"{url}#nosuch",
                             f"sqlite:///{study_db}#s2"])[1])
    monkeypatch.setattr(storage_mod, "get_storage",
                        lambda url, *a, **k: real(f"sqlite:///{study_db}" if "://" in url and "sqlite" not in url
                                                  else url, *a, **k))
    urls = list(URLS)
    for i in range(0, len(urls), 2):
        out = tmp_path / f"compare{i}"
        code, text = _run(["plot", "--out", str(out), "--compare", f"{urls[i]}#s2", f"{urls[i + 1]}#s2"])
        assert code == 0, text
        assert (out / "compare_fronts.csv").is_file()
        outputs += [text, _written(out)]
    monkeypatch.undo()
    blob = "\n".join(outputs) + _written(tmp_path)
    assert "127.0.0.1" in blob  # the URLs were printed (redacted), not skipped
    leaked = [s for s in _all_secrets() if s in blob]
    assert not leaked, f"passwords printed or written: {leaked}"


def test_bad_inputs_table_shows_no_password():
    from benchmarks.bad_inputs import DOC, parse

    messages = "\n".join(msg for _, _, msg in parse(DOC.read_text()).values())
    leaked = [s for s in _all_secrets() if s in messages]
    assert not leaked, leaked


def test_a_space_name_never_becomes_a_path_outside_out(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: ../../../escaped_space\nbase: bitfusion\nknobs: {array.rows: [8, 16]}\n")
    code, text = _run(["sweep", "--out", str(tmp_path / "run"), "--no-progress", "--hw-space", str(space)])
    assert code == 2 and "name must be" in text and text.count("\n") == 1, text
    assert not list(tmp_path.parent.glob("escaped_space*"))
    from mixaq.core._paths import path_inside, safe_filename

    name = safe_filename("../../x/y")
    assert "/" not in name and not name.startswith("."), name
    assert path_inside(tmp_path, "../../evil.yaml").parent == tmp_path
