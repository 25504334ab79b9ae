"""The Makefile's targets pass what they document (dry runs: `make -n`, nothing is run)."""

import os
import subprocess

from config import folders

# Under `make test` these tests run inside make: a nested make would print "Entering directory" lines
# and inherit the outer make's flags, so each dry run starts as if from a shell.
_OUTER_MAKE_VARIABLES = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")


def _dry_run(*arguments: str) -> str:
    environment = {name: value for name, value in os.environ.items() if name not in _OUTER_MAKE_VARIABLES}
    return subprocess.run(
        ["make", "-n", "--no-print-directory", *arguments],
        cwd=folders.REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_tfx_run_passes_data_serving_logs_and_verbose_to_its_module():
    commands = _dry_run("tfx-run", "DATA=/data/spans", "SERVING_LOGS=/data/logs", "VERBOSE=1", "OUT=/tmp/out")
    [command] = [line for line in commands.splitlines() if "-m pipeline.tfx_cli" in line]
    for flag in (
        "--data-root /data/spans",
        "--serving-logs /data/logs",
        "--verbose",
        "--output-dir /tmp/out",
    ):
        assert flag in command  # pipeline/tfx_cli.py passes them to the tfx CLI by the environment


def test_image_prune_and_lock_run_their_modules():
    assert "-m kubeflow.image_prune" in _dry_run("image-prune")
    assert "-m tools.lock --uv-version " in _dry_run("lock")


def test_setup_installs_the_system_packages_and_the_tests_check_them_first():
    assert "-m tools.system_packages install" in _dry_run("setup")
    for target in ("test", "test-fast", "test-e2e"):
        lines = _dry_run(target).splitlines()
        first_test = next(n for n, line in enumerate(lines) if "/pytest " in line)
        assert any("tools.system_packages check" in line for line in lines[:first_test]), target
        assert "tools.system_packages skipped" in lines[-1], target  # the last lines name what was skipped


def test_help_lists_every_target_in_its_group():
    listing = subprocess.run(["make", "help"], cwd=folders.REPO_ROOT, capture_output=True, text=True).stdout
    for group in ("Run", "Inspect a run", "Kubeflow Pipelines", "Benchmarks", "Tests and code health"):
        assert f"\n{group}" in listing
    makefile = (folders.REPO_ROOT / "Makefile").read_text()
    documented = [
        line.split(":")[0] for line in makefile.splitlines() if " ## " in line and not line.startswith("#")
    ]
    assert documented and all(f"make {target} " in listing for target in documented)
