"""Bad input stops `taxi-pipeline run` with a message naming the problem, and touches nothing stored."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def output_dir_with_pushed_model(tmp_path) -> Path:
    """An output folder holding a previously pushed model, which a failed run must not touch."""
    output_dir = tmp_path / "outputs"
    version = output_dir / "serving_model" / "1700000000"
    (version / "variables").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"previously pushed model")
    return output_dir


def _run(output_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as `make run` calls it."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--output-dir", str(output_dir), *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_refused(result, output_dir: Path, digest_before: str, *expected_in_message: str) -> None:
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.startswith("error: ")
    assert "Traceback" not in message
    for expected in expected_in_message:
        assert expected in message
    assert _tree_digest(output_dir / "serving_model") == digest_before
    assert not (output_dir / "pipeline_root").exists()


def test_missing_input_folder(tmp_path, output_dir_with_pushed_model):
    before = _tree_digest(output_dir_with_pushed_model / "serving_model")
    missing = tmp_path / "no-such-folder"
    result = _run(output_dir_with_pushed_model, "--data-root", str(missing))
    _assert_refused(result, output_dir_with_pushed_model, before, str(missing), "does not exist")


def test_empty_input_folder(tmp_path, output_dir_with_pushed_model):
    before = _tree_digest(output_dir_with_pushed_model / "serving_model")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(output_dir_with_pushed_model, "--data-root", str(empty))
    _assert_refused(result, output_dir_with_pushed_model, before, str(empty), "no span of data")


def test_csv_missing_a_required_column(small_taxi_spans, output_dir_with_pushed_model):
    before = _tree_digest(output_dir_with_pushed_model / "serving_model")
    broken = small_taxi_spans / "span-20152" / "data.csv"
    lines = broken.read_text().splitlines()
    tips_index = lines[0].split(",").index("tips")
    # Drop the column from every line (the taxi sample has no quoted commas before `tips`).
    broken.write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != tips_index) for line in lines)
    )
    result = _run(output_dir_with_pushed_model, "--data-root", str(small_taxi_spans))
    _assert_refused(result, output_dir_with_pushed_model, before, str(broken), "tips")


def test_unreadable_schema_file(tmp_path, small_taxi_spans, output_dir_with_pushed_model):
    before = _tree_digest(output_dir_with_pushed_model / "serving_model")
    schema = tmp_path / "schema.pbtxt"
    schema.write_bytes(b"\x89PNG\r\n\x1a\n not a schema")
    result = _run(output_dir_with_pushed_model, "--data-root", str(small_taxi_spans), "--schema", str(schema))
    _assert_refused(result, output_dir_with_pushed_model, before, str(schema), "Schema")


def test_schema_path_that_is_a_folder(tmp_path, small_taxi_spans, output_dir_with_pushed_model):
    before = _tree_digest(output_dir_with_pushed_model / "serving_model")
    folder = tmp_path / "schema_dir"
    folder.mkdir()
    shutil.copy(Path(__file__).parents[1] / "schema" / "schema.pbtxt", folder)
    result = _run(output_dir_with_pushed_model, "--data-root", str(small_taxi_spans), "--schema", str(folder))
    _assert_refused(result, output_dir_with_pushed_model, before, str(folder))
