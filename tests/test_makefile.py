"""The Makefile's targets pass what they document (dry runs: `make -n`, nothing is run)."""

import subprocess

from config import folders


def _dry_run(*arguments: str) -> str:
    return subprocess.run(
        ["make", "-n", *arguments], cwd=folders.REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_tfx_run_passes_data_serving_logs_and_verbose_through_the_environment():
    commands = _dry_run("tfx-run", "DATA=/data/spans", "SERVING_LOGS=/data/logs", "VERBOSE=1", "OUT=/tmp/out")
    assert "TAXI_DATA_ROOT=/data/spans" in commands and "TAXI_SERVING_LOGS=/data/logs" in commands
    assert "VERBOSE=1" in commands and "TAXI_OUTPUT_DIR=/tmp/out" in commands
    assert "--data-root" not in commands  # the tfx CLI passes no flags: everything goes by the environment
    assert f"$BEAM_HOME/{folders.TFX_CLI_EXIT_STATUS_FILE}" in commands  # the run's own exit status


def test_help_lists_every_target_in_its_group():
    listing = subprocess.run(["make", "help"], cwd=folders.REPO_ROOT, capture_output=True, text=True).stdout
    for group in ("Run", "Inspect a run", "Kubeflow Pipelines", "Benchmarks", "Tests and code health"):
        assert f"\n{group}" in listing
    makefile = (folders.REPO_ROOT / "Makefile").read_text()
    documented = [
        line.split(":")[0] for line in makefile.splitlines() if " ## " in line and not line.startswith("#")
    ]
    assert documented and all(f"make {target} " in listing for target in documented)
