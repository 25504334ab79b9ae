"""The compiled pipeline run by KFP's own local runner (`kfp.local`, DockerRunner) in the pipeline image,
three times, with KFP's step cache on (kubeflow/kfp_local_run.py): a first run; a second on unchanged
data, which reruns only the steps that are never cached and what they feed; a third after a new span
arrives, started as the UI or a recurring run starts it (no argument, no submit.py), whose ExampleGen
runs and reads the new span.

Slow (about 20 minutes); needs Docker, the image (`make image-offline`) and the kfp.local environment
(`make kfp-local-env`): `make test-kfp` provides all three. Without them it is skipped with the reason.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config import folders
from kubeflow import compiler, input_fingerprint
from registry import versions

pytestmark = pytest.mark.kfp
KFP_LOCAL_PYTHON = folders.REPO_ROOT / "build" / "kfp-local-venv" / "bin" / "python"
TASK_LINE = "kfp.local task: "  # kubeflow/kfp_local_run.py's line per task
# Upstream of anything never cached: on unchanged data KFP serves them all from its cache.
CACHED_ON_UNCHANGED_DATA = (
    "CsvExampleGen",
    "ServingLogsExampleGen",
    "StatisticsGen",
    "ServingStatisticsGen",
    "ExampleValidator",
    "TrainingDataGate",
    "Transform",
    "Trainer",
    "EvaluationSample",
)


def _prepare_data(shared: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli.main", "prepare-data", "--output-dir", str(shared)],
        check=True,
        capture_output=True,
    )


def _run(package: Path, root: Path, cache: Path) -> dict[str, dict]:
    """One kfp.local run of the compiled pipeline; returns task -> {cached, outputs}."""
    ran = subprocess.run(
        [
            str(KFP_LOCAL_PYTHON),
            str(folders.REPO_ROOT / "kubeflow" / "kfp_local_run.py"),
            str(package),
            str(root),
            str(cache),
        ],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-5000:]
    assert "kfp.local: pipeline succeeded" in ran.stdout
    lines = [
        json.loads(line[len(TASK_LINE) :]) for line in ran.stdout.splitlines() if line.startswith(TASK_LINE)
    ]
    return {line["task"]: line for line in lines}


def _span(run: dict) -> int:
    return int(run["CsvExampleGen"]["outputs"]["examples"]["custom:span"])


def test_kfp_local_runs_the_pipeline_and_its_cache_follows_the_data(image, tmp_path):  # noqa: F811
    if not KFP_LOCAL_PYTHON.exists():
        pytest.skip(f"{KFP_LOCAL_PYTHON} is missing: run `make kfp-local-env`")
    root, shared, cache = (
        tmp_path / "pipeline_root",
        tmp_path / "pipeline_root" / "shared",
        tmp_path / "cache",
    )
    _prepare_data(shared)
    shutil.rmtree(shared / "example_gen_input" / "span-20162")  # 2016 H2 arrives before the third run
    package = compiler.compile_pipeline(tmp_path / "build", shared_dir=str(shared))

    first = _run(package, root, cache)
    assert not any(task["cached"] for task in first.values())
    assert _span(first) == 20161
    serving = shared / "serving_model"
    [version] = versions.complete_versions(serving)
    assert versions.not_whole(serving) == [] and (serving / version / versions.RECORD_FILE).is_file()
    [page] = list(root.rglob(folders.SLICE_REPORT_FILE))
    assert "Slice report: blessed" in page.read_text()

    second = _run(package, root, cache)
    assert not second[input_fingerprint.STEP]["cached"] and not second["ProductionModel"]["cached"]
    assert second[input_fingerprint.STEP]["outputs"] == first[input_fingerprint.STEP]["outputs"]
    assert [task for task in CACHED_ON_UNCHANGED_DATA if not second[task]["cached"]] == []
    assert versions.complete_versions(serving) == [version]  # the same model is not pushed again

    _prepare_data(shared)  # the new span, and nothing passed to the run
    third = _run(package, root, cache)
    assert not third["CsvExampleGen"]["cached"] and _span(third) == 20162
    assert not third["Transform"]["cached"] and not third["Trainer"]["cached"]
    assert versions.not_whole(serving) == []
    # DockerRunner leaves every task's container behind; the runner script removes them, or they would
    # pin the image and no old image could be pruned.
    left = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"volume={root}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.split() == [], f"kfp.local left task containers: {left.stdout.split()}"
