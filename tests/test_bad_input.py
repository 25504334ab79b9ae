"""Bad input stops `taxi-pipeline run` with a message naming the problem, and touches nothing stored."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config import folders
from pipeline import local_runner
from tests.support.outputs import assert_refused, run_cli, tree_digest


def test_missing_input_folder(tmp_path, output_dir_with_pushed_model):
    before = tree_digest(output_dir_with_pushed_model / "serving_model")
    missing = tmp_path / "no-such-folder"
    result = run_cli(output_dir_with_pushed_model, "--data-root", str(missing))
    assert_refused(result, output_dir_with_pushed_model, before, str(missing), "does not exist")


def test_empty_input_folder(tmp_path, output_dir_with_pushed_model):
    before = tree_digest(output_dir_with_pushed_model / "serving_model")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(output_dir_with_pushed_model, "--data-root", str(empty))
    assert_refused(result, output_dir_with_pushed_model, before, str(empty), "no span of data")


def test_csv_missing_a_required_column(small_taxi_spans, output_dir_with_pushed_model):
    before = tree_digest(output_dir_with_pushed_model / "serving_model")
    broken = small_taxi_spans / "span-20152" / "data.csv"
    lines = broken.read_text().splitlines()
    tips_index = lines[0].split(",").index("tips")
    # Drop the column from every line (the taxi sample has no quoted commas before `tips`).
    broken.write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != tips_index) for line in lines)
    )
    result = run_cli(output_dir_with_pushed_model, "--data-root", str(small_taxi_spans))
    assert_refused(result, output_dir_with_pushed_model, before, str(broken), "tips")


def test_unreadable_schema_file(tmp_path, small_taxi_spans, output_dir_with_pushed_model):
    before = tree_digest(output_dir_with_pushed_model / "serving_model")
    schema = tmp_path / "schema.pbtxt"
    schema.write_bytes(b"\x89PNG\r\n\x1a\n not a schema")
    result = run_cli(
        output_dir_with_pushed_model, "--data-root", str(small_taxi_spans), "--schema", str(schema)
    )
    assert_refused(result, output_dir_with_pushed_model, before, str(schema), "Schema")


def test_schema_path_that_is_a_folder(tmp_path, small_taxi_spans, output_dir_with_pushed_model):
    before = tree_digest(output_dir_with_pushed_model / "serving_model")
    folder = tmp_path / "schema_dir"
    folder.mkdir()
    shutil.copy(Path(__file__).parents[1] / "schema" / "schema.pbtxt", folder)
    result = run_cli(
        output_dir_with_pushed_model, "--data-root", str(small_taxi_spans), "--schema", str(folder)
    )
    assert_refused(result, output_dir_with_pushed_model, before, str(folder))


@pytest.mark.parametrize("uri", ["gs://taxi-bucket/spans", "s3://taxi-bucket/spans"])
@pytest.mark.parametrize("flag", ["--output-dir", "--data-root", "--schema", "--serving-logs"])
def test_object_store_paths_are_refused_at_once(tmp_path, flag, uri):
    """Object-store folders are not supported (docs/inputs.md): refused before anything is read or
    written, naming the flag, instead of a path mangled into a local one that "does not exist"."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", flag, uri],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "TAXI_OUTPUT_DIR": str(tmp_path / "outputs")},
    )
    assert result.returncode == local_runner.BAD_INPUT_EXIT_CODE
    assert result.stderr.startswith(
        f"error: {flag} {uri}: object-store paths (gs://, s3://, ...) are not supported"
    )
    assert "mount the bucket" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no output folder, nothing written


@pytest.mark.parametrize(
    "variable",
    [folders.OUTPUT_DIR_ENV, folders.DATA_ROOT_ENV, folders.SCHEMA_PATH_ENV, folders.SERVING_LOGS_ENV],
)
def test_object_store_paths_in_the_environment_are_refused_too(tmp_path, monkeypatch, variable):
    monkeypatch.setenv(variable, "gs://bucket/x")
    with pytest.raises(folders.UnsupportedPath, match=rf"^\${variable} gs://bucket/x: object-store paths"):
        folders.Settings.resolve()
    # A flag wins over the variable: a local flag with a gs:// variable is fine.
    flag = {
        folders.OUTPUT_DIR_ENV: "output_dir",
        folders.DATA_ROOT_ENV: "data_root",
        folders.SCHEMA_PATH_ENV: "schema_path",
        folders.SERVING_LOGS_ENV: "serving_logs",
    }[variable]
    folders.Settings.resolve(**{flag: str(tmp_path / "local")})
