"""The package layout (docs/architecture.md): no import circles between mixaq modules, counting
imports inside functions and under TYPE_CHECKING, and lazy package exports resolved to the module
that defines each name."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"core": "mixaq.core", "simulator": "mixaq.simulator", "models": "mixaq.models", "search": "mixaq.search"}


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, pkg in ROOTS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            mods[".".join([pkg, *parts])] = path
    return mods


def _exports(path: Path, pkg: str) -> dict[str, str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_EXPORTS":
            return {k: (pkg + v if v.startswith(".") else v) for k, v in ast.literal_eval(node.value).items()}
    return {}


def import_graph() -> dict[str, set[str]]:
    """module -> the mixaq modules it imports anywhere (a package's lazy export counts as its module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in mods:
                        deps.add(full)
                    elif node.module in mods and mods[node.module].name == "__init__.py":
                        deps.add(_exports(mods[node.module], node.module).get(alias.name, node.module))
                    else:
                        deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in mods and d != name and mods[d].name != "__init__.py"}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_circles():
    assert _cycles(import_graph()) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_and_simulator_import_nothing_above_them():
    for name, deps in import_graph().items():
        if name.startswith("mixaq.core"):
            assert all(d.startswith("mixaq.core") for d in deps), (name, deps)
        if name.startswith("mixaq.simulator"):
            assert all(d.startswith(("mixaq.core", "mixaq.simulator")) for d in deps), (name, deps)
        if name.startswith("mixaq.models"):
            assert not any(d.startswith("mixaq.search") for d in deps), (name, deps)


def _vocabulary() -> dict[str, tuple[str, ...]]:
    from mixaq.models._config import OBSERVERS, STRATEGIES
    from mixaq.models.detection._registry import FAMILY_NAMES

    return {"strategy": STRATEGIES, "observer": OBSERVERS, "family": FAMILY_NAMES}


# The one module that spells each vocabulary (docs/architecture.md, "One module per shared rule").
VOCABULARY_HOME = {"strategy": "models/_config.py", "observer": "models/_config.py",
                   "family": "models/detection/_registry.py"}


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, value) of every string constant that is not a docstring or a piece of an f-string."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(sub) for sub in ast.walk(node))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def test_vocabulary_literals_live_in_one_module():
    """Family, strategy and observer names are spelled once; everything else imports the constants."""
    found = []
    for kind, names in _vocabulary().items():
        for folder in ROOTS:
            for path in sorted((REPO / folder).rglob("*.py")):
                rel = str(path.relative_to(REPO))
                if rel == VOCABULARY_HOME[kind]:
                    continue
                found += [f"{rel}:{line}: {kind} {value!r}" for line, value in _string_literals(path) if value in names]
    assert found == []


def test_literal_scan_sees_a_literal(tmp_path):
    path = tmp_path / "x.py"
    path.write_text('"""random in a docstring is fine"""\nA = f"random@{1}"\nB = "random"\n')
    assert _string_literals(path) == [(3, "random")]
