"""The kit's modules import each other without a circle (lazy imports inside functions included): each module can
be read, and imported, on its own footing."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "mmsr_kit"


def module_names():
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(name, path, node, known):
    """The kit's modules an import statement of module `name` (file `path`) names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for _ in range(max(node.level - 1, 0)):
        package = package.rsplit(".", 1)[0]
    target = (package + (f".{node.module}" if node.module else "")) if node.level else node.module
    return {f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names} & set(known)


def import_graph():
    known = module_names()
    return {name: {dep for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for dep in imported(name, path, node, known)} - {name} for name, path in known.items()}


def cycles(graph):
    """Modules from which their own imports lead back to them."""
    looped = set()
    for start in graph:
        seen, stack = set(), [start]
        while stack:
            for dep in graph[stack.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        if start in seen:
            looped.add(start)
    return looped


def test_the_graph_sees_a_circle_where_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {"a", "b", "c"}
    graph = import_graph()
    assert "mmsr_kit.builders" in graph["mmsr_kit.baselines"] and "mmsr_kit.baselines" in graph["mmsr_kit.modes"]
    assert "mmsr_kit.encoders.vlp" in graph["mmsr_kit.modes"]  # a lazy import, inside a function, counts


def test_no_module_of_the_kit_imports_one_that_imports_it_back():
    assert not cycles(import_graph())
