"""The programs from Debian packages some tests run (tools/system_packages.py lists them), found in one
place: a missing one fails the test naming it and how to install it, or, with SKIP_SYSTEM_TESTS=1, skips it."""

import pytest

from tools import system_packages


def require(name: str, *more: str) -> str:
    """The path of program `name` (after checking `more` too); fails or skips the test when one is missing."""
    paths = []
    for program in map(system_packages.program, (name, *more)):
        path = program.path()
        if path is None:
            message = (
                f"{program.name} is not installed; tests need it for {program.needed_by}. `make setup` installs "
                f"it as root or with sudo, or: {system_packages.install_command([program])}"
            )
            if system_packages.skipping():
                pytest.skip(f"{system_packages.SKIP_ENV}=1: {message}")
            pytest.fail(f"{message}; {system_packages.SKIP_ENV}=1 skips these tests instead", pytrace=False)
        paths.append(path)
    return paths[0]
