"""The shape of the package, held by tests: the local broker stands alone, every exported name
resolves, and every import path the README and the notebooks use keeps importing."""

from __future__ import annotations

import ast
import importlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "alpaca_nb"


def _import_nodes(path: Path, *, typing_only: bool = True) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in a file, deferred ones (inside functions) included; those under
    ``if TYPE_CHECKING:`` too unless ``typing_only=False`` (they never run)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = (
        set()
        if typing_only
        else {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for statement in block.body
            for node in ast.walk(statement)
        }
    )
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip]


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import statement in a file, deferred and typing-only included."""
    found = []
    for node in _import_nodes(path):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        else:
            found.append((node.module or "", node.level))
    return found


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth of the code (functions included),
    leaving out what only type checkers read. ``from pkg import sub`` counts as importing
    ``pkg.sub`` alone when every name is a submodule."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for node in _import_nodes(path, typing_only=False):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            else:
                base = _absolute(path, node.module or "", node.level)
                subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in files]
                wanted = subs if len(subs) == len(node.names) else [base, *subs]
            for target in wanted:
                while target and target not in files:  # a name inside a module: that module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle_deferred_or_not():
    """A cycle held together by an import inside a function still ties the modules together:
    none is allowed. (What only type checkers read does not count.)"""
    graph = import_graph()
    assert "alpaca_nb.session" in graph["alpaca_nb.stream"]  # the graph sees deferred imports
    found = cycles(graph)
    assert not found, "\n".join(" <-> ".join(group) for group in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _absolute(path: Path, module: str, level: int) -> str:
    """The absolute name a (possibly relative) import in ``path`` refers to."""
    if level == 0:
        return module
    package = list(path.relative_to(REPO).parts[:-1])  # the folder a file (or __init__) is in
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def test_the_local_broker_imports_nothing_else_of_the_package():
    """``alpaca_nb.sim`` is a broker of its own: it may be run, copied or replaced without the
    client, and the client may not lean on its internals."""
    offending = []
    for path in sorted((PACKAGE / "sim").rglob("*.py")):
        for module, level in _imports(path):
            name = _absolute(path, module, level)
            if (name == "alpaca_nb" or name.startswith("alpaca_nb.")) and not (
                name == "alpaca_nb.sim" or name.startswith("alpaca_nb.sim.")
            ):
                offending.append(f"{path.relative_to(REPO)}: {'.' * level}{module} -> {name}")
    assert not offending, "\n".join(offending)


def test_the_import_check_sees_relative_imports():
    here = PACKAGE / "sim" / "server.py"
    assert _absolute(here, "faults", 1) == "alpaca_nb.sim.faults"
    assert _absolute(here, "errors", 2) == "alpaca_nb.errors"
    assert _absolute(PACKAGE / "sim" / "__init__.py", "", 2) == "alpaca_nb"


@pytest.mark.parametrize(
    "module",
    ["alpaca_nb", "alpaca_nb.ledger", "alpaca_nb.stream", "alpaca_nb.live", "alpaca_nb.widgets", "alpaca_nb.sim"],
)
def test_every_exported_name_resolves(module):
    imported = importlib.import_module(module)
    names = getattr(imported, "__all__", None)
    assert names, f"{module} has no __all__"
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module}.__all__ names what it does not have: {missing}"


def _documented_paths() -> set[str]:
    texts = [(REPO / "README.md").read_text()]
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        texts += ["".join(cell["source"]) for cell in cells]
    found = {match for text in texts for match in re.findall(r"\balpaca_nb(?:\.\w+)+", text)}
    for text in texts:  # from alpaca_nb[.x] import a, b
        for module, names in re.findall(r"from (alpaca_nb(?:\.\w+)*) import \(?([\w, ]+)", text):
            found |= {f"{module}.{name.strip()}" for name in names.split(",") if name.strip()}
    return found


def test_every_import_path_the_readme_and_notebooks_use_still_imports():
    paths = _documented_paths()
    assert {"alpaca_nb.sim.LocalBroker", "alpaca_nb.AlpacaOrderRequest", "alpaca_nb.analytics"} <= paths  # seen
    unresolved = []
    for path in sorted(paths):
        parts = path.split(".")
        # the longest prefix that is a module, the rest attributes of it
        for cut in range(len(parts), 0, -1):
            try:
                value = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attribute in parts[cut:]:
                    value = getattr(value, attribute)
            except AttributeError:
                unresolved.append(path)
            break
        else:
            unresolved.append(path)
    assert not unresolved, unresolved


def test_the_package_logger_prints_nothing_unless_the_application_says_so():
    """A NullHandler on ``alpaca_nb``: a warning the application did not ask to see does not
    reach stderr through Python's last-resort handler."""
    code = "import logging, alpaca_nb; logging.getLogger('alpaca_nb').warning('set aside: one record')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 0 and run.stderr == ""
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("alpaca_nb").handlers)


def test_the_package_says_it_is_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_architecture_md_maps_every_module():
    """ARCHITECTURE.md is the map a newcomer reads first: a module it does not name (or one it
    names that is gone) means the map is out of date."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    tree = text[text.index("## The tree") : text.index("## Direction of dependencies")]
    words = set(re.findall(r"[A-Za-z_][\w]*", tree))
    modules = {path.stem for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert not sorted(modules - words), f"not in ARCHITECTURE.md's tree: {sorted(modules - words)}"
    packages = {path.name for path in PACKAGE.rglob("*") if path.is_dir() and (path / "__init__.py").exists()}
    assert all(f"{name}/" in tree for name in packages), packages


# What names a ledger or a service object in the code that must use only their public face.
_LEDGER_OR_SERVICE = {"ledger", "svc", "service", "store", "order_service"}


def _private_reaches(path: Path, source: str | None = None) -> list[str]:
    """``x._name`` where ``x`` is a ledger or a service object (a name or an attribute called
    ledger, svc, service, store or order_service: ``ledger._open``, ``self.service._hub``), and
    imports of the ledger's inner modules (``ledger.rows``) or of a name ``alpaca_nb.ledger``
    does not export. ``source``: check this text as if it were the file's."""
    import alpaca_nb.ledger

    tree = ast.parse(path.read_text() if source is None else source, str(path))
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name in _LEDGER_OR_SERVICE:
                found.append((node.lineno, node.col_offset, ast.unparse(node)))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names]
            else:
                base = _absolute(path, node.module or "", node.level)
                targets = [(base, alias.name) for alias in node.names]
            for module, name in targets:
                inner = module.startswith("alpaca_nb.ledger.")
                hidden = module == "alpaca_nb.ledger" and name is not None and name not in alpaca_nb.ledger.__all__
                if inner or hidden:
                    found.append((node.lineno, node.col_offset, ast.unparse(node)))
                    break
    return [f"{path.relative_to(REPO)}:{line}: {text}" for line, _col, text in sorted(found)]


def test_analytics_and_widgets_use_only_the_public_face_of_the_ledger_and_the_service():
    """Issue 10: what sits on top (analytics, the widgets) reads the ledger and the service
    through their public methods, never through an underscore name or the ledger's inner modules."""
    files = [PACKAGE / "analytics.py", *sorted((PACKAGE / "widgets").glob("*.py"))]
    offending = [reach for path in files for reach in _private_reaches(path)]
    assert not offending, "\n".join(offending)


def test_the_private_reach_check_sees_what_it_should():
    code = (
        "from ..ledger.rows import order_row\n"
        "from ..ledger import rows, Ledger\n"
        "def f(ledger, svc, self):\n"
        "    ledger._open(write=False); svc._hub; self.service._trading; self.service.order_service._where\n"
        "    ledger.sql('x'); self._lock; ledger.__class__\n"
    )
    # checked as if it were a widget module (the path is only named, never read)
    reaches = [line.split(": ", 1)[1] for line in _private_reaches(PACKAGE / "widgets" / "sample.py", code)]
    assert reaches == [
        "from ..ledger.rows import order_row",
        "from ..ledger import rows, Ledger",
        "ledger._open",
        "svc._hub",
        "self.service._trading",
        "self.service.order_service._where",
    ], reaches


def report() -> str:
    """Sizes (files, lines) per package and which packages import which: the figures in
    ARCHITECTURE.md. ``python -m tests.test_structure``"""

    def package_of(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "alpaca_nb (modules)"

    sizes: dict[str, list[int]] = {}
    for path in PACKAGE.rglob("*.py"):
        entry = sizes.setdefault(package_of(_module_name(path)), [0, 0])
        entry[0] += 1
        entry[1] += len(path.read_text().splitlines())
    lines = ["| package | files | lines |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {files} | {count:,} |" for name, (files, count) in sorted(sizes.items())]
    edges: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        for target in targets:
            a, b = package_of(module), package_of(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    lines += ["", "Imports between packages (A -> what A imports):", ""]
    lines += [f"- `{a}` -> {', '.join(f'`{b}`' for b in sorted(bs))}" for a, bs in sorted(edges.items())]
    lines += ["", f"Cycles between modules: {len(cycles(import_graph()))}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
