"""Print the package-level import graph of operator/specdeploy and any cycles in it.

Why: the layering (api at the bottom, render/validate/monitor pure, rollout on top of them, the shell on top of
everything) is a property of the imports, so it should be checked by reading them, not by memory. A "package" is
a subpackage of specdeploy (api, render, rollout, ...) or a top-level module (handlers, tracker, ...). Imports
inside ``if TYPE_CHECKING:`` blocks count too: a cycle through annotations is still a cycle in the design.

Usage: python hack/import_graph.py [--cycles]   (exit status 1 when a cycle exists)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "operator" / "specdeploy"


def unit_of(module: str) -> str | None:
    """``specdeploy.rollout.plan`` -> ``rollout``; ``specdeploy.kube`` -> ``kube``; outside specdeploy -> None."""
    parts = module.split(".")
    if parts[0] != "specdeploy":
        return None
    return parts[1] if len(parts) > 1 else "specdeploy"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, names: set[str]) -> set[str]:
    """Absolute names of the specdeploy modules ``path`` imports (``from pkg import module`` counts as the module,
    not as the package's ``__init__``)."""
    tree = ast.parse(path.read_text(), str(path))
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in names else mod)
    return {m for m in found if m.startswith("specdeploy")}


def module_graph() -> dict[str, set[str]]:
    names = {module_name(p) for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        graph[module_name(path)] = {m for m in imports(path, names) if m in names} - {module_name(path)}
    return graph


def package_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for mod, deps in modules.items():
        src = unit_of(mod)
        assert src is not None
        edges = graph.setdefault(src, set())
        edges.update(d for d in (unit_of(m) for m in deps) if d is not None and d not in (src, "specdeploy"))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def main() -> int:
    modules = module_graph()
    packages = package_graph(modules)
    print("package-level imports (specdeploy.<package> -> what it imports):")
    for pkg in sorted(packages):
        print(f"  {pkg:12} -> {', '.join(sorted(packages[pkg])) or '-'}")
    found = False
    for title, graph in (("package", packages), ("module", modules)):
        for comp in cycles(graph):
            found = True
            print(f"{title} cycle: {' <-> '.join(comp)}")
    if not found:
        print("no cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
