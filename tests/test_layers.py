"""The layering rule: each package's docstring says which packages it may import ("May import: ...", whole
packages, no exceptions), and every module keeps to it in what it imports and in what it reaches through
the modules it imports, within its own package too (read from syntax trees, function-level imports
included), with no loop between modules. Tests may import anything; they are checked for neither.
"""

import ast
import re
from pathlib import Path

import pytest

from config import folders

RULE_LINE = re.compile(r"^May import: (.+?)\.?$", re.M)
NOTHING = "nothing of this project"


def packages(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file() and p.name != "build")


def rule_of(root: Path, package: str) -> set[str] | None:
    """The modules and packages `package` may import, from its docstring; None when it states no rule."""
    docstring = ast.get_docstring(ast.parse((root / package / "__init__.py").read_text())) or ""
    found = RULE_LINE.search(docstring)
    if found is None:
        return None
    listed = found.group(1).strip()
    return set() if listed == NOTHING else {name.strip() for name in listed.split(",")}


def is_test(path: Path, root: Path) -> bool:
    relative = path.relative_to(root)
    return (
        relative.parts[0] == "tests"
        or path.name.endswith("_test.py")
        or path.name.startswith("test_")
        or path.name == "conftest.py"
    )


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every module of this project's packages that is not a test."""
    found = {}
    for package in packages(root):
        for path in sorted((root / package).rglob("*.py")):
            if "build" not in path.relative_to(root).parts and not is_test(path, root):
                found[module_name(path, root)] = path
    return found


def imports_of(path: Path, own_packages: set[str], own_modules: set[str]) -> list[tuple[int, str]]:
    """(line, imported module) of every import of this project's code in `path`, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pipeline import configs` imports the module pipeline.configs, not only the package.
            names = [
                (node.lineno, f"{node.module}.{alias.name}")
                if f"{node.module}.{alias.name}" in own_modules
                else (node.lineno, node.module)
                for alias in node.names
            ]
        else:
            continue
        found.extend((line, name) for line, name in names if name.split(".")[0] in own_packages)
    return found


def layering_violations(root: Path) -> list[str]:
    """Every import, direct or reached through other modules of this project (within a package too), of a
    package its importer's rule does not list; every rule that names a module instead of a package."""
    own_packages = set(packages(root))
    modules = source_modules(root)
    rules = {package: rule_of(root, package) for package in sorted(own_packages)}
    violations = [
        f"{root / package / '__init__.py'}: no 'May import: ...' line in the docstring"
        for package, rule in rules.items()
        if rule is None
    ]
    violations += [
        f"{root / package / '__init__.py'}: the rule names {entry}, a module: a rule lists whole packages, "
        "with no exceptions"
        for package, rule in rules.items()
        for entry in sorted(rule or ())
        if "." in entry
    ]
    graph = {name: imports_of(path, own_packages, set(modules)) for name, path in modules.items()}
    for name in sorted(modules):
        package = name.split(".")[0]
        allowed = (rules[package] or set()) | {package}
        for chain in _reached(name, graph, set(modules)):
            imported = chain[-1][1]
            if imported.split(".")[0] in allowed:
                continue
            line, first = chain[0]
            through = f" (through {' -> '.join(step for _, step in chain[:-1])})" if len(chain) > 1 else ""
            violations.append(
                f"{modules[name].relative_to(root)}:{line} reaches {imported}{through}, but {package} may "
                f"import only {', '.join(sorted(rules[package] or ())) or NOTHING} ({package}/__init__.py)"
            )
    return violations


def _reached(start: str, graph: dict[str, list[tuple[int, str]]], modules: set[str]) -> list[list]:
    """For every module `start` reaches, directly or through this project's modules, the first chain of
    (line, module) imports found to it (breadth first, so the shortest)."""
    chains, seen, frontier = [], {start}, [[step] for step in graph[start]]
    while frontier:
        chain = frontier.pop(0)
        imported = chain[-1][1]
        if imported in seen:
            continue
        seen.add(imported)
        chains.append(chain)
        target = imported if imported in modules else None
        if target is None:  # a package imported as a whole runs its __init__
            target = imported.split(".")[0] if imported.split(".")[0] in modules else None
        frontier.extend(chain + [step] for step in graph.get(target, []) if target)
    return chains


def import_loops(root: Path) -> list[list[str]]:
    """Every set of modules that import each other, directly or through others (Tarjan's components)."""
    own_packages = set(packages(root))
    modules = source_modules(root)
    graph = {
        name: sorted(
            {imported for _, imported in imports_of(path, own_packages, set(modules))} & set(modules)
        )
        for name, path in modules.items()
    }
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def test_every_module_keeps_to_its_package_rule():
    assert layering_violations(folders.REPO_ROOT) == []


def test_no_modules_import_each_other():
    assert import_loops(folders.REPO_ROOT) == []


def test_the_architecture_page_states_the_same_rule():
    """docs/architecture.md's table repeats each package's rule for readers: it must not drift from it."""
    table = (folders.REPO_ROOT / "docs" / "architecture.md").read_text()
    for package in packages(folders.REPO_ROOT):
        rule = rule_of(folders.REPO_ROOT, package)
        row = re.search(rf"^\| `{package}/`[^\n]*\| ([^|\n]*) \|$", table, re.M)
        if row is None or rule is None or row.group(1) in ("everything", "everything above"):
            continue
        stated = set(re.findall(r"`([\w.]+)`", row.group(1)))
        assert stated == rule, (
            f"docs/architecture.md says {package} may import {sorted(stated)}, its docstring {sorted(rule)}"
        )


def _package(root: Path, name: str, rule: str, modules: dict[str, str]) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(f'"""A package.\n\nMay import: {rule}.\n"""\n')
    for module, source in modules.items():
        (root / name / f"{module}.py").write_text(source)


@pytest.fixture
def layered_tree(tmp_path) -> Path:
    _package(tmp_path, "config", NOTHING, {"pipeline": "Y = 2\n"})
    _package(tmp_path, "models", "config", {"features": "X = 1\n"})
    _package(tmp_path, "components", "config, models", {"gate": "from config import pipeline\n"})
    _package(tmp_path, "pipeline", "config, models, components", {"build": "import components.gate\n"})
    return tmp_path


def test_the_rule_passes_a_tree_that_keeps_it(layered_tree):
    assert layering_violations(layered_tree) == []
    assert import_loops(layered_tree) == []


def test_a_component_importing_the_pipeline_breaks_the_rule(layered_tree):
    (layered_tree / "components" / "slice_report.py").write_text(
        "def render():\n    from pipeline import build\n"
    )
    [violation] = layering_violations(layered_tree)
    assert violation.startswith("components/slice_report.py:2 reaches pipeline.build")
    assert "components may import only config, models" in violation


def test_what_a_module_reaches_through_its_own_package_is_checked(layered_tree):
    """models.features may import config; if it reached components through a module of its own package,
    the chain is named."""
    (layered_tree / "models" / "helpers.py").write_text("from components import gate\n")
    (layered_tree / "models" / "features.py").write_text("from models import helpers\n")
    violations = layering_violations(layered_tree)
    assert any(
        v.startswith("models/features.py:1 reaches components.gate (through models.helpers)")
        for v in violations
    ), violations


def test_a_rule_naming_a_module_is_an_exception_and_refused(layered_tree):
    (layered_tree / "models" / "__init__.py").write_text(
        '"""A package.\n\nMay import: config, pipeline.build.\n"""\n'
    )
    assert any("names pipeline.build, a module" in v for v in layering_violations(layered_tree))


def test_a_package_without_a_rule_is_reported(layered_tree):
    (layered_tree / "models" / "__init__.py").write_text('"""No rule here."""\n')
    assert any("no 'May import" in violation for violation in layering_violations(layered_tree))


def test_modules_that_import_each_other_are_a_loop(layered_tree):
    (layered_tree / "pipeline" / "inputs.py").write_text("from pipeline.sample import rows\n")
    (layered_tree / "pipeline" / "sample.py").write_text("def rows():\n    from pipeline import inputs\n")
    assert import_loops(layered_tree) == [["pipeline.inputs", "pipeline.sample"]]
