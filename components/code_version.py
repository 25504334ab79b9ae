"""A fingerprint of the code a component runs, for TFX's cache key.

TFX keys a cached execution on its inputs, its execution properties and the class path of its executor,
not on the code behind the path: an edited gate, sampler or metric would be served from the cache of an
existing output folder. So every component whose code is this project's carries this fingerprint among
its execution properties: the syntax trees (comments and formatting left out) of its executor's module
and of every module of this project that module imports, directly or not.
"""

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

from tfx.types import component_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
# The project's own packages, whose code a fingerprint follows (tests and benchmarks never run in a step).
PACKAGES = frozenset(
    p.name
    for p in REPO_ROOT.iterdir()
    if (p / "__init__.py").is_file() and p.name not in ("tests", "benchmarks", "build")
)


# The execution property each of this project's components carries (merged into its spec's PARAMETERS).
KEY = "code_fingerprint"
PARAMETER = {KEY: component_spec.ExecutionParameter(type=str, optional=True)}


def of_executor(executor_class: type) -> str:
    """The fingerprint of an executor's module and of this project's modules it imports."""
    return source_fingerprint(executor_class.__module__)


def module_file(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def imported_modules(tree: ast.AST, packages: frozenset[str] = PACKAGES) -> set[str]:
    """The modules of `packages` that a module's syntax tree imports, at any depth (in functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from config import pipeline` imports the module config.pipeline, not only the package.
            names = [
                f"{node.module}.{alias.name}"
                if importlib.util.find_spec(node.module) and _is_module(f"{node.module}.{alias.name}")
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in packages)
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _module_source(module: str) -> tuple[str, frozenset[str]]:
    """(a module's syntax tree, dumped; the project's modules it imports); ("", none) if it has no source."""
    path = module_file(module)
    return ("", frozenset()) if path is None else _parsed(path.read_text(), str(path))


@functools.cache
def _parsed(source: str, filename: str) -> tuple[str, frozenset[str]]:
    """Cached by the source text itself: a pipeline fingerprints a dozen executors whose imports overlap
    (parsing them again for each cost 0.5 s of every run), and an edited file is parsed anew."""
    tree = ast.parse(source, filename=filename)
    return ast.dump(tree), frozenset(imported_modules(tree, PACKAGES))


@functools.cache
def source_fingerprint(*modules: str) -> str:
    """Hash of the syntax trees of `modules` and of every module of this project they import, transitively."""
    seen: dict[str, str] = {}
    pending = list(modules)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen[module], imports = _module_source(module)
        pending.extend(imports - seen.keys())
    digest = hashlib.sha256()
    for module in sorted(seen):
        digest.update(module.encode() + b"\0" + seen[module].encode() + b"\0")
    return digest.hexdigest()[:16]
