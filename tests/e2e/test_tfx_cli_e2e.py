"""The documented tfx CLI commands register and run the pipeline on Beam (small real data)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import folders
from config import pipeline as pipeline_config
from pipeline import local_runner
from reports import run_summary
from tests.support import spans

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
TFX = str(Path(sys.executable).parent / "tfx")


def _tfx(*arguments: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TFX, *arguments], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_tfx_pipeline_create_and_run_create(tmp_path, small_taxi_spans):
    output_dir = tmp_path / "outputs"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "BEAM_HOME": str(output_dir / "tfx_cli_home"),
        folders.OUTPUT_DIR_ENV: str(output_dir),
        folders.DATA_ROOT_ENV: str(small_taxi_spans),
    }
    created = _tfx(
        "pipeline", "create", "--engine", "beam", "--pipeline_path", "pipeline/beam_runner.py", env=env
    )
    assert created.returncode == 0, created.stderr[-3000:]
    assert f'Pipeline "{pipeline_config.PIPELINE_NAME}" created successfully' in created.stdout
    assert not (output_dir / "metadata.sqlite").exists(), "creating the pipeline must not run it"

    ran = _tfx("run", "create", "--engine", "beam", "--pipeline_name", pipeline_config.PIPELINE_NAME, env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "done   Pusher" in ran.stdout
    # TFX builds an sdist of itself in TMPDIR per Beam component unless told the workers' dependencies;
    # nothing may pile up there over runs.
    assert sorted(p.name for p in scratch.iterdir()) == [], "the run left files in TMPDIR"

    summary = run_summary.summarize_latest_run(output_dir / "metadata.sqlite", pipeline_config.PIPELINE_NAME)
    assert summary["succeeded"]
    statuses = {c["component"]: c["status"] for c in summary["components"]}
    assert statuses["CsvExampleGen"] == statuses["Trainer"] == statuses["Evaluator"] == "ran"


def test_make_tfx_run_exits_with_the_runs_own_status(tmp_path):
    """The tfx CLI reports every failure as 1; `make tfx-run` (pipeline/tfx_cli.py) exits with the run's."""
    data_root = tmp_path / "spans"
    spans.write_span(data_root, 20161, header=spans.HEADER)  # one span: too few to train and evaluate on
    ran = subprocess.run(
        [sys.executable, "-m", "pipeline.tfx_cli", "--output-dir", str(tmp_path / "outputs")]
        + ["--data-root", str(data_root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ran.returncode == local_runner.BAD_INPUT_EXIT_CODE, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "error: Found 1 span(s) ([20161])" in ran.stdout + ran.stderr  # the run's own message
