"""Every notebook runs (from its jupytext source, in a kernel of this interpreter, on small
settings) and every committed .ipynb is in sync with its .py source."""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext  # the dev extra's; a missing one must fail here, not skip
import nbclient
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
# Per notebook; the small settings finish in well under a minute each on 2 busy cores.
CELL_TIMEOUT_S = 300


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_three_notebooks_exist():
    assert [p.stem[:2] for p in SOURCES] == ["01", "02", "03"], SOURCES


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_ipynb_is_in_sync_with_its_source(source):
    """The .ipynb must be what `jupytext --to ipynb` makes of the .py (outputs aside)."""
    paired = source.with_suffix(".ipynb")
    assert paired.is_file(), f"{paired.name} missing: run `jupytext --to ipynb {source.name}` in notebooks/"
    from_py = jupytext.read(source)
    committed = jupytext.read(paired)
    # Compare as percent-format text: cell types, sources and order, nothing else.
    text_py = jupytext.writes(from_py, fmt="py:percent")
    text_nb = jupytext.writes(committed, fmt="py:percent")
    assert text_nb == text_py, (f"{paired.name} is out of sync with {source.name}: "
                                f"run `jupytext --sync {source.name}` in notebooks/")


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_notebook_executes_on_small_settings(source, tmp_path, monkeypatch):
    from jupyter_client.manager import KernelManager

    nb = jupytext.read(source)
    # The kernel inherits the environment: small settings, quiet matplotlib, few threads, and a
    # throwaway cache and home so nothing lands in the repository or the user's cache.
    monkeypatch.setenv("MIXAQ_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MIXAQ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    # A kernel of this very interpreter (the venv), whatever kernelspecs are installed.
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv[0] = sys.executable
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(run_dir)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", ()) if o.output_type == "error"]
    assert not errors
    # Notebooks keep their files in temp dirs and clean up after themselves.
    assert list(run_dir.iterdir()) == []
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("mixaq_nb")]
    assert leftovers == [], leftovers
    # Every code cell ran, and the plotting ones drew something.
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip())
    assert any(o.get("data", {}).get("image/png") for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", ())), "no figure rendered"
