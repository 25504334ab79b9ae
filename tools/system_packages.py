"""The programs from Debian packages that tests run besides Python's: one list, installed by `make setup`,
checked by `make test` before any test runs, and found by the tests through tests/support/system_tools.py.

    python -m tools.system_packages install   # what is missing, as root or with `sudo -n`; else prints the command
    python -m tools.system_packages check     # exit status 1 naming what is missing, unless SKIP_SYSTEM_TESTS=1
    python -m tools.system_packages skipped   # with SKIP_SYSTEM_TESTS=1, the tests it skipped for what is missing

SKIP_SYSTEM_TESTS=1 opts out: the tests that need a missing program skip instead of failing.
"""

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys

SKIP_ENV = "SKIP_SYSTEM_TESTS"


@dataclasses.dataclass(frozen=True)
class Program:
    """A program tests run, the Debian package it comes in, and which tests need it."""

    name: str
    package: str
    needed_by: str
    other_names: tuple[str, ...] = ()  # what other distributions call it

    def path(self) -> str | None:
        """Where it is on PATH, or None."""
        for name in (self.name, *self.other_names):
            found = shutil.which(name)
            if found:
                return found
        return None


# To add one, add a line: the tests find it by its name (tests/support/system_tools.require).
PROGRAMS = (
    Program(
        "chromium",
        "chromium",
        "the HTML pages rendered in a browser (reports/, the pipeline's and the monitoring loop's e2e tests)",
        other_names=("chromium-browser",),
    ),
    Program("nginx", "nginx-light", "the serving stack and the monitoring loop (e2e)"),
    Program("prometheus", "prometheus", "the serving stack and the monitoring loop (e2e)"),
    Program("promtool", "prometheus", "the alerting rules' unit tests (tests/test_alert_rules.py)"),
    Program(
        "mtail",
        "mtail",
        "the serving stack's nginx access log as metrics, the canary analysis and its program's tests (serving/)",
    ),
)


def program(name: str) -> Program:
    """The program of that name in PROGRAMS; KeyError names the ones there are."""
    for candidate in PROGRAMS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{name} is not in tools/system_packages.py's PROGRAMS ({[p.name for p in PROGRAMS]})")


def missing() -> list[Program]:
    return [candidate for candidate in PROGRAMS if candidate.path() is None]


def skipping() -> bool:
    """Whether the user opted out of the tests that need a missing program."""
    return os.environ.get(SKIP_ENV, "") not in ("", "0")


def install_command(programs: list[Program]) -> str:
    """The shell command that installs `programs`' packages on Debian, for this user."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    packages = " ".join(sorted({p.package for p in programs}))
    return f"{sudo}apt-get update && {sudo}apt-get install -y {packages}"


def _names(programs: list[Program]) -> str:
    return ", ".join(p.name for p in programs)


def _privilege() -> list[str] | None:
    """The prefix that runs a command as root here: none as root, `sudo -n` where it needs no password,
    else None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def install() -> int:
    """Installs the missing programs' packages where it can; else prints the command. Always 0: `make run`
    needs none of them, and `make test` says what is still missing."""
    absent = missing()
    if not absent:
        return 0
    prefix = _privilege()
    if prefix is None or shutil.which("apt-get") is None:
        print(
            f"make setup: the tests need {_names(absent)}, which are not installed, and this user cannot install "
            f"them (neither root nor passwordless sudo, or no apt-get). Install them yourself, on Debian with:\n"
            f"  {install_command(absent)}",
            file=sys.stderr,
        )
        return 0
    packages = sorted({p.package for p in absent})
    print(f"make setup: installing {' '.join(packages)} (the tests run {_names(absent)}) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        if subprocess.run([*prefix, *command], env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print(
                f"make setup: `{' '.join([*prefix, *command])}` failed (above); install them yourself:\n"
                f"  {install_command(absent)}",
                file=sys.stderr,
            )
            return 0
    return 0


def check() -> int:
    """0 when every program is installed or the user opted out of their tests; else 1, naming them."""
    absent = missing()
    if not absent:
        return 0
    if skipping():
        print(f"{SKIP_ENV}=1: the tests that need {_names(absent)} (not installed) will be skipped.")
        return 0
    lines = [f"  {p.name} ({p.package}): {p.needed_by}" for p in absent]
    print(
        "error: these programs are not installed, and tests need them:\n" + "\n".join(lines) + "\n"
        "`make setup` installs them as root or with sudo; or run:\n"
        f"  {install_command(absent)}\n"
        f"or skip those tests: {SKIP_ENV}=1 make test",
        file=sys.stderr,
    )
    return 1


def skipped() -> int:
    """With SKIP_SYSTEM_TESTS=1 and a program missing, names what was skipped (the last lines `make test`
    prints); nothing otherwise."""
    absent = missing()
    if absent and skipping():
        print(f"\nSkipped ({SKIP_ENV}=1), for want of programs that are not installed:")
        for p in absent:
            print(f"  {p.name} ({p.package}): {p.needed_by}")
        print("(each pytest run's SKIPPED lines above name the tests)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.system_packages", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("action", choices=("install", "check", "skipped"))
    action = parser.parse_args(argv).action
    return {"install": install, "check": check, "skipped": skipped}[action]()


if __name__ == "__main__":
    sys.exit(main())
