"""`make lock`: re-resolves requirements.lock in a scratch virtual environment (needs network to PyPI).

    python3.10 -m tools.lock --uv-version X.Y.Z

Run by the Python the lock is for: its venv installs the project's direct requirements with uv, and the
lock becomes what uv froze there (less pip and uv themselves) under the old lock's comment lines.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK = REPO_ROOT / "requirements.lock"
SCRATCH_VENV = REPO_ROOT / "build" / "lock-venv"
# What the code and its tests import directly; everything else in the lock follows from these.
REQUIREMENTS = (
    "tfx[kfp]==1.16.0",
    "apache-beam[gcp]==2.59.0",
    "kfp==2.5.0",
    "tf-keras==2.16.0",
    "dill",
    "pytest",
    "pytest-xdist",
    "ruff",
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "orjson",
    # Validates the model card against its schema (reports/model_card.py).
    "jsonschema-rs",
    # The fuzz test of the serving stack's HTTP APIs (tests/e2e/test_front_door_fuzz.py).
    "schemathesis==4.30.1",
    "hypothesis",
)
# The installers: in the scratch venv, not requirements of the project.
NOT_LOCKED = ("pip==", "uv==")


def lock_text(old_lock: str, frozen: str) -> str:
    """The new lock: the old one's comment lines, then the frozen requirements except the installers."""
    comments = [line for line in old_lock.splitlines() if line.startswith("#")]
    pins = [line for line in frozen.splitlines() if line and not line.startswith(NOT_LOCKED)]
    return "\n".join([*comments, *pins]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uv-version", required=True, help="The uv that `make setup` installs with.")
    args = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 10):
        print(f"error: the lock is for Python 3.10; this is {sys.version.split()[0]}", file=sys.stderr)
        return 1
    shutil.rmtree(SCRATCH_VENV, ignore_errors=True)
    python = SCRATCH_VENV / "bin" / "python"
    uv = str(SCRATCH_VENV / "bin" / "uv")
    for command in (
        [sys.executable, "-m", "venv", str(SCRATCH_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", f"uv=={args.uv_version}"],
        [uv, "pip", "install", "--python", str(python), *REQUIREMENTS],
    ):
        print(" ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            print(f"error: `{' '.join(command)}` failed (above); {LOCK.name} is unchanged", file=sys.stderr)
            return 1
    frozen = subprocess.run(
        [uv, "pip", "freeze", "--python", str(python)], check=True, capture_output=True, text=True
    ).stdout
    new_lock = LOCK.with_name(LOCK.name + ".new")
    new_lock.write_text(lock_text(LOCK.read_text(), frozen))
    new_lock.replace(LOCK)
    print(f"Wrote {LOCK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
