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


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import statement in a file, deferred ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def _absolute(path: Path, module: str, level: int) -> str:
    """The absolute name a (possibly relative) import in ``path`` refers to."""
    if level == 0:
        return module
    package = list(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package[:-1]
    else:
        package = package[:-1]  # the package itself is the folder
    base = package[:len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module] if module else base)


def test_the_local_broker_imports_nothing_else_of_the_package():
    """``alpaca_nb.sim`` is a broker of its own: it may be run, copied or replaced without the
    client, and the client may not lean on its internals."""
    offending = []
    for path in sorted((PACKAGE / "sim").rglob("*.py")):
        for module, level in _imports(path):
            name = _absolute(path, module, level)
            if (name == "alpaca_nb" or name.startswith("alpaca_nb.")) and not (
                    name == "alpaca_nb.sim" or name.startswith("alpaca_nb.sim.")):
                offending.append(f"{path.relative_to(REPO)}: {'.' * level}{module} -> {name}")
    assert not offending, "\n".join(offending)


def test_the_import_check_sees_relative_imports():
    here = PACKAGE / "sim" / "server.py"
    assert _absolute(here, "faults", 1) == "alpaca_nb.sim.faults"
    assert _absolute(here, "errors", 2) == "alpaca_nb.errors"
    assert _absolute(PACKAGE / "sim" / "__init__.py", "", 2) == "alpaca_nb"


@pytest.mark.parametrize("module", ["alpaca_nb", "alpaca_nb.ledger", "alpaca_nb.stream", "alpaca_nb.live",
                                    "alpaca_nb.widgets", "alpaca_nb.sim"])
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
    for text in texts:   # from alpaca_nb[.x] import a, b
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
    code = ("import logging, alpaca_nb; "
            "logging.getLogger('alpaca_nb').warning('set aside: one record')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 0 and run.stderr == ""
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("alpaca_nb").handlers)


def test_the_package_says_it_is_typed():
    assert (PACKAGE / "py.typed").is_file()
