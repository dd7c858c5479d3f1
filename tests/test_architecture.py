"""The package's map holds (docs/architecture.md): layers import only downwards, no
import cycle, no private module of one package imported by another, no module over 400
lines, every config key documented."""

import ast
import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "nvdrec"

# docs/architecture.md "Layers", bottom to top; a package may import only from its own
# row and the rows before it
LAYERS = [
    {"errors"},
    {"native"},
    {"ops"},
    {"structures"},
    {"io"},
    {"geometry"},
    {"render"},
    {"data"},
    {"train"},
    {"viewer"},
    {"cli", "cli_photos", "cli_show", "cli_common", "__main__", "__init__"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """nvdrec modules ``name`` imports (anywhere in the file, lazy imports included)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("nvdrec"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("nvdrec"))
    return {m for m in out if m in modules and m != name}


def _graph():
    modules = _modules()
    return modules, {m: _imports(m, p, modules) for m, p in modules.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_layers_import_only_downwards():
    _, graph = _graph()
    rank = {pkg: i for i, row in enumerate(LAYERS) for pkg in row}
    bad = []
    for m, deps in graph.items():
        if m == "nvdrec":  # the package's lazy public API re-exports every layer
            continue
        for d in deps:
            if d != "nvdrec" and rank[_top(d)] > rank[_top(m)]:
                bad.append(f"{m} -> {d}")
    assert bad == []


def test_no_import_cycle():
    _, graph = _graph()
    graph = {m: {d for d in deps if d != "nvdrec"} for m, deps in graph.items()}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_private_module_imported_across_packages():
    _, graph = _graph()
    bad = [
        f"{m} -> {d}"
        for m, deps in graph.items()
        for d in deps
        if _top(d) != _top(m) and any(p.startswith("_") for p in d.split(".")[2:])
    ]
    assert bad == []


def test_no_private_name_imported_across_packages():
    """``from ..ops.cubemap import _helper`` in another package is a private import too."""
    modules = _modules()
    bad = []
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            target = ".".join(here[: len(here) - (node.level - 1)] + [node.module or ""])
            private = [a.name for a in node.names if a.name[:1] == "_" and a.name[:2] != "__"]
            if private and _top(target.rstrip(".")) != _top(name):
                bad.append(f"{name} imports {', '.join(private)} from {target}")
    assert bad == []


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_every_config_key_is_in_the_training_docs():
    from nvdrec.train.config import Config

    text = (ROOT / "docs" / "training.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    missing = [
        f.name for f in dataclasses.fields(Config) if not any(f"`{f.name}`" in r for r in rows)
    ]
    assert missing == []
