"""Span discovery and the checks that refuse bad input before anything runs."""

from pathlib import Path

import pytest

from pipeline import configs, input_checks

HEADER = "fare,tips,company\n"


def write_span(root: Path, span: int, header: str = HEADER, rows: str = "1.0,0.5,A\n") -> Path:
    """Writes `root/span-N/data.csv` (also used by inputs_test.py)."""
    path = root / f"span-{span}" / "data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + rows)
    return path


def test_missing_folder_is_named_in_the_error(tmp_path):
    with pytest.raises(input_checks.InputError, match=str(tmp_path / "nope")):
        input_checks.discover_spans(tmp_path / "nope")


def test_folder_without_spans_is_rejected(tmp_path):
    (tmp_path / "stray.csv").write_text(HEADER)
    with pytest.raises(input_checks.InputError, match="no span of data"):
        input_checks.discover_spans(tmp_path)


def test_spans_are_found_by_number_and_non_span_folders_ignored(tmp_path):
    write_span(tmp_path, 20151)
    write_span(tmp_path, 20132)
    (tmp_path / "span-latest").mkdir()
    (tmp_path / "span-20161").mkdir()  # empty: no CSV, so not a span
    assert list(input_checks.discover_spans(tmp_path)) == [20132, 20151]


def test_missing_required_column_names_file_and_column(tmp_path):
    bad = write_span(tmp_path, 1, header="fare,company\n", rows="1.0,A\n")
    with pytest.raises(input_checks.InputError) as error:
        input_checks.check_csv_headers(input_checks.discover_spans(tmp_path), ["fare", "tips", "company"])
    assert str(bad) in str(error.value) and "tips" in str(error.value)


def test_files_with_different_column_orders_are_rejected(tmp_path):
    write_span(tmp_path, 1)
    reordered = write_span(tmp_path, 2, header="tips,fare,company\n")
    with pytest.raises(input_checks.InputError, match=str(reordered)):
        input_checks.check_csv_headers(input_checks.discover_spans(tmp_path), ["fare", "tips", "company"])


def test_unparseable_schema_is_named(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("feature { name: 'fare' type: NOT_A_TYPE }")
    with pytest.raises(input_checks.InputError, match=str(schema)):
        input_checks.check_schema_file(schema)


def test_curated_schema_is_valid():
    input_checks.check_schema_file(configs.SCHEMA_PATH)
