"""Bad input stops `taxi-pipeline run` with a message naming the problem, and touches nothing stored."""

import shutil
from pathlib import Path

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
