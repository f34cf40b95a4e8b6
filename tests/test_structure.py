"""The shape of ``planning/``: no module imports another's private names, the import graph has no circle,
and no module writes hidden caches into another object's ``__dict__``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "planning"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(tree: ast.Module, name: str, known: set[str]) -> list[tuple[str, list[str]]]:
    """(imported planning module, names taken from it) for every import in the module, lazy ones included."""
    found = []
    package = name if name in known and (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").exists() else \
        name.rsplit(".", 1)[0]
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                 for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in type_only:  # imports for annotations only never run: no circle at run time
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("planning")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("planning"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:  # `from planning import rules` imports a module, not a name
                    found.append((sub, []))
                else:
                    found.append((base, [alias.name]))
    return found


def test_no_module_imports_a_private_name_of_another():
    trees = modules()
    known = set(trees)
    offences = []
    for name, tree in trees.items():
        for target, names in imports(tree, name, known):
            if target == name:
                continue
            offences += [f"{name} imports {target}.{n}" for n in names if n.startswith("_")]
    assert not offences, "\n".join(offences)


def test_the_import_graph_of_planning_has_no_circle():
    trees = modules()
    known = set(trees)
    graph = {name: {t for t, _ in imports(tree, name, known) if t in known and t != name and t != "planning"}
             for name, tree in trees.items()}
    # a package's __init__ re-exporting its submodules is not a circle through them
    for name in list(graph):
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_hidden_caches_in_other_objects():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "__dict__.setdefault" in line or "WeakKeyDictionary" in line:
                offences.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offences, "\n".join(offences)


def _compares_language(node: ast.AST) -> bool:
    """``lang == "zh"`` (or ``self.lang != "en"``...): a language branch outside planning.text."""
    if not isinstance(node, ast.Compare):
        return False
    operands = [node.left, *node.comparators]
    names = {o.id if isinstance(o, ast.Name) else o.attr for o in operands if isinstance(o, (ast.Name, ast.Attribute))}
    codes = {o.value for o in operands if isinstance(o, ast.Constant)}
    return "lang" in names and bool(codes & {"zh", "en"})


def test_no_language_branches_outside_text():
    """User-facing text chooses its language through planning.text.Text, never by comparing codes."""
    offences = []
    for path in [*sorted(PACKAGE.rglob("*.py")), ROOT / "app.py"]:
        if path == PACKAGE / "text.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if _compares_language(node):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offences, offences
