"""The compiled pipeline run by KFP's own local runner (`kfp.local`, DockerRunner) in the pipeline image.

Slow (minutes); needs Docker, the image (`make image-offline`) and the kfp.local environment
(`make kfp-local-env`): `make test-kfp` provides all three. Without them it is skipped with the reason.
"""

import subprocess
import sys

import pytest

from config import folders
from kubeflow import compiler

pytestmark = pytest.mark.kfp
KFP_LOCAL_PYTHON = folders.REPO_ROOT / "build" / "kfp-local-venv" / "bin" / "python"


def test_kfp_local_runs_the_compiled_pipeline_to_a_pushed_model(image, tmp_path):  # noqa: F811
    if not KFP_LOCAL_PYTHON.exists():
        pytest.skip(f"{KFP_LOCAL_PYTHON} is missing: run `make kfp-local-env`")
    root, shared = tmp_path / "pipeline_root", tmp_path / "pipeline_root" / "shared"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "prepare-data", "--output-dir", str(shared)],
        check=True,
        capture_output=True,
    )
    package = compiler.compile_pipeline(tmp_path / "build", shared_dir=str(shared))

    ran = subprocess.run(
        [
            str(KFP_LOCAL_PYTHON),
            str(folders.REPO_ROOT / "kubeflow" / "kfp_local_run.py"),
            str(package),
            str(root),
        ],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-5000:]
    assert "kfp.local: pipeline succeeded" in ran.stdout
    [version] = list((shared / "serving_model").iterdir())
    assert (version / "saved_model.pb").exists()
    [page] = list(root.rglob(folders.SLICE_REPORT_FILE))
    assert "Slice report: blessed" in page.read_text()
    # DockerRunner leaves every task's container behind; the runner script removes them, or they would
    # pin the image and no old image could be pruned.
    left = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"volume={root}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.split() == [], f"kfp.local left task containers: {left.stdout.split()}"
