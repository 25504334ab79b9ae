"""No function over MAX_LINES lines unless its docstring says why: a function too long to hold in one's head
is split into named steps. Every function of the repository counts, tests and nested functions included
(a nested function's lines count in its parent too), from its `def` line to its last, read from syntax trees.

    .venv/bin/python -m tests.test_function_length    # every function over the limit, and the count
"""

import ast
import sys
from pathlib import Path

from config import folders

MAX_LINES = 80
# A longer function's docstring says why in a sentence that starts with this.
REASON = "Long because"
# Folders that hold no source of this project: environments, build and run outputs.
NOT_SOURCE = {"build", "outputs", "__pycache__", "site-packages"}


def source_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*.py")
        if not any(part.startswith(".") or part in NOT_SOURCE for part in path.relative_to(root).parts)
    )


def long_functions(root: Path) -> dict[str, tuple[int, bool]]:
    """`path::name` -> (lines, whether its docstring says why) of every function over MAX_LINES lines."""
    found = {}
    for path in source_files(root):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    reasoned = REASON.lower() in (ast.get_docstring(node) or "").lower()
                    found[f"{path.relative_to(root)}::{node.name}"] = (lines, reasoned)
    return found


def test_no_function_is_longer_than_the_limit_without_saying_why():
    found = long_functions(folders.REPO_ROOT)
    unexplained = [
        f"{name}: {lines} lines"
        for name, (lines, reasoned) in sorted(found.items())
        if not reasoned and lines > MAX_LINES
    ]
    assert not unexplained, (
        f"functions over {MAX_LINES} lines whose docstring does not say why ('{REASON} ...'): "
        f"split them into named steps, or say why they cannot be: {unexplained}"
    )


def test_the_count_sees_a_long_function_and_its_reason(tmp_path):
    body = "".join(f"    x{index} = {index}\n" for index in range(MAX_LINES))
    (tmp_path / "module.py").write_text(
        f"def long():\n{body}\n"
        f'def explained():\n    """{REASON} it is one table."""\n{body}\n'
        f"def short():\n    return 1\n"
    )
    assert long_functions(tmp_path) == {
        "module.py::long": (MAX_LINES + 1, False),
        "module.py::explained": (MAX_LINES + 2, True),
    }


if __name__ == "__main__":
    functions = long_functions(folders.REPO_ROOT)
    for name, (lines, reasoned) in sorted(functions.items(), key=lambda item: -item[1][0]):
        print(f"{lines:5d}  {name}{'  (docstring says why)' if reasoned else ''}")
    print(f"{len(functions)} function(s) over {MAX_LINES} lines")
    sys.exit(0)
