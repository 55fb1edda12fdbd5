"""The protocol core stands alone: harness/rdp imports no other harness package, and no modules
of harness import each other in a cycle (runtime imports, lazy ones inside functions included;
`if TYPE_CHECKING:` blocks excluded)."""

from __future__ import annotations

import ast
from pathlib import Path

RDP = Path(__file__).resolve().parents[2] / "harness" / "rdp"


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_statements(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement that runs on import, `if TYPE_CHECKING:` bodies left out."""
    out: list[ast.stmt] = []
    for node in nodes:
        out.append(node)
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                out += _runtime_statements(node.body)
            out += _runtime_statements(node.orelse)
        elif isinstance(node, ast.Try):
            out += _runtime_statements(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                out += _runtime_statements(handler.body)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.With):
            out += _runtime_statements(node.body)
    return out


def imports_of(root: Path, path: Path) -> set[str]:
    """Absolute names of what `path` imports when it runs (modules and module.attribute)."""
    me = _module_name(root, path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_statements(ast.parse(path.read_text(), str(path)).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if node.module:  # `from . import x` needs x, not the package
                found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = {_module_name(root, p): p for p in root.rglob("*.py")}
    return {name: {m for m in imports_of(root, path) if m in modules and m != name}
            for name, path in modules.items()}


def upward_imports(root: Path) -> dict[str, list[str]]:
    core = _module_name(root, root / "__init__.py")
    upward = {}
    for path in root.rglob("*.py"):
        bad = sorted(m for m in imports_of(root, path)
                     if m.startswith("harness.") and not m.startswith(core))
        if bad:
            upward[str(path.relative_to(root))] = bad
    return upward


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    return found


def test_no_import_from_other_harness_packages() -> None:
    assert upward_imports(RDP) == {}


def test_no_import_cycle_in_the_core() -> None:
    assert cycles(import_graph(RDP)) == []


def test_no_import_cycle_in_the_whole_package() -> None:
    """Issue 8: no import cycle anywhere in harness (lazy imports inside functions count)."""
    assert cycles(import_graph(RDP.parent)) == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Two modules importing each other, and one importing the host layer, are found; an
    import under TYPE_CHECKING is not counted."""
    pkg = tmp_path / "harness" / "rdp"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nfrom .a import x\n"
                              "if TYPE_CHECKING:\n    from . import c\n")
    (pkg / "c.py").write_text("def f():\n    from ..host import policy\n")
    graph = import_graph(pkg)
    assert graph["harness.rdp.a"] == {"harness.rdp.b"}
    assert graph["harness.rdp.b"] == {"harness.rdp.a"}
    assert cycles(graph) == [["harness.rdp.a", "harness.rdp.b", "harness.rdp.a"]]
    assert upward_imports(pkg) == {"c.py": ["harness.host", "harness.host.policy"]}
