"""The package's shape, as docs/architecture.md states it: the import order and the size limits.

Static checks over the source (ast), no import of kagglekit: they run in well under a second.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kagglekit"
DOC = ROOT / "docs" / "architecture.md"

MAX_FUNCTION_LINES = 80  # docstrings aside
MAX_INIT_ATTRIBUTES = 12
MAX_POSITIONAL_ARGS = 6  # in a call to a class (a constructor)
MAX_MODULE_LINES = 700


def _import_order() -> dict[str, int]:
    """Return {top-level module: level} from the ```import-order``` block of docs/architecture.md."""
    match = re.search(r"```import-order\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, f"{DOC} has no ```import-order block"
    order = {}
    for level, line in enumerate(l for l in match.group(1).splitlines() if l.strip()):
        for name in line.split(","):
            order[name.strip()] = level
    return order


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.relative_to(PACKAGE).parts)


def _top(path: Path) -> str:
    """Return the top-level module or package (below kagglekit) that a source file belongs to."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def _imported_tops(path: Path, tree: ast.AST) -> set[str]:
    """Return every kagglekit top-level module `path` imports anywhere (function-level imports included)."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("kagglekit.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("kagglekit"):
                    continue
                base = node.module.split(".")[1:]
            else:
                base = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            if base:
                found.add(base[0])
            else:  # from . import x (at the package's top): x is a module, or a name from __init__
                found |= {a.name for a in node.names if (PACKAGE / a.name).is_dir()
                          or (PACKAGE / f"{a.name}.py").is_file()}
    return found


def test_every_module_is_placed_in_the_documented_import_order():
    order = _import_order()
    tops = {_top(p) for p in _sources()} - {"__init__", "__main__"}
    missing = sorted(tops - set(order))
    assert not missing, f"modules missing from docs/architecture.md's import order: {missing}"


def test_modules_import_only_modules_before_them_in_the_documented_order():
    order = _import_order()
    wrong = []
    for path in _sources():
        me = _top(path)
        if me in ("__init__", "__main__"):
            continue
        for other in sorted(_imported_tops(path, ast.parse(path.read_text(encoding="utf-8"))) - {me}):
            if other in order and order[other] > order[me]:
                wrong.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not wrong, "imports against the documented order: " + "; ".join(wrong)


def test_the_order_check_sees_function_level_and_relative_imports(tmp_path):
    # The checker itself: a function-level relative import and an absolute one are both found.
    source = "def f():\n    from ..plan import X\n    import kagglekit.job\n"
    path = PACKAGE / "learner" / "example.py"
    assert _imported_tops(path, ast.parse(source)) == {"plan", "job"}


def _function_lines(node: ast.AST) -> int:
    n = node.end_lineno - node.lineno + 1
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        n -= body[0].end_lineno - body[0].lineno + 1
    return n


def _walk_sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_no_function_is_longer_than_the_limit():
    long = [f"{p.relative_to(ROOT)}:{n.name} ({_function_lines(n)})" for p, tree in _walk_sources()
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and _function_lines(n) > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_module_is_longer_than_the_limit():
    big = [f"{p.relative_to(ROOT)} ({len(p.read_text(encoding='utf-8').splitlines())})" for p in _sources()
           if len(p.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES]
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_init_sets_more_than_twelve_attributes():
    wide = []
    for path, tree in _walk_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                targets = [t for n in ast.walk(node) for t in getattr(n, "targets", [getattr(n, "target", None)])]
                flat = [e for t in targets for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]
                names = {t.attr for t in flat
                         if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
                if len(names) > MAX_INIT_ATTRIBUTES:
                    wide.append(f"{path.relative_to(ROOT)}:{node.lineno} ({len(names)})")
    assert not wide, f"__init__ setting more than {MAX_INIT_ATTRIBUTES} attributes: {wide}"


def test_no_constructor_call_takes_more_than_six_positional_arguments():
    classes = {n.name for _, tree in _walk_sources() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    calls = []
    for path, tree in _walk_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and len(node.args) > MAX_POSITIONAL_ARGS:
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in classes:
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}({len(node.args)} positional)")
    assert not calls, f"constructor calls with more than {MAX_POSITIONAL_ARGS} positional arguments: {calls}"


def test_the_length_check_ignores_docstrings():
    source = 'def f():\n    """Doc\n    string."""\n    return 1\n'
    assert _function_lines(ast.parse(source).body[0]) == 2
