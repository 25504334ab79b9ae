"""Span discovery and the checks made before anything runs: files as exports write them are read, bad
input is refused with the file, the line and what was expected."""

from pathlib import Path

import pytest

from config import pipeline as pipeline_config
from inputs import checks, taxi_sample
from inputs.taxi_sample import sample_csv_path
from models import features
from tests.support.spans import HEADER, REQUIRED, real_rows, write_csv, write_span


def checked(path: Path, span: int | None = None, required=features.REQUIRED_COLUMNS) -> checks.CsvFile:
    [found], _ = checks.read_headers([path], required)
    return checks.check_rows(found, span, pipeline_config.MAX_DUPLICATE_ROW_FRACTION)


def test_missing_folder_is_named_in_the_error(tmp_path):
    with pytest.raises(checks.InputError, match=str(tmp_path / "nope")):
        checks.discover_spans(tmp_path / "nope")


def test_folder_without_spans_is_rejected(tmp_path):
    (tmp_path / "stray.csv").write_text(HEADER)
    with pytest.raises(checks.InputError, match="no span of data"):
        checks.discover_spans(tmp_path)


def test_spans_are_found_by_number_and_non_span_folders_ignored(tmp_path):
    write_span(tmp_path, 20151)
    write_span(tmp_path, 20132)
    (tmp_path / "span-latest").mkdir()
    (tmp_path / "span-20161").mkdir()  # empty: no CSV, so not a span
    assert list(checks.discover_spans(tmp_path)) == [20132, 20151]


def test_missing_required_column_names_file_and_column(tmp_path):
    bad = write_span(tmp_path, 1, header="fare,company\n", rows="1.0,A\n")
    with pytest.raises(checks.InputError) as error:
        checks.read_headers([bad], REQUIRED)
    assert str(bad) in str(error.value) and "lacks the required column(s) tips" in str(error.value)


def test_a_byte_order_mark_and_crlf_line_ends_are_read(tmp_path):
    header, rows = real_rows(5)
    path = write_csv(tmp_path / "export.csv", header, rows, line_end="\r\n", mark="\ufeff")
    found = checked(path)
    assert found.has_byte_order_mark and found.known_columns == header and found.rows == 5
    assert found.needs_normalising(header)
    plain = checked(write_csv(tmp_path / "plain.csv", header, rows, line_end="\r\n"))
    assert not plain.has_byte_order_mark and not plain.needs_normalising(header)


def test_columns_in_another_order_are_read_and_normalised_to_the_inputs_order(tmp_path):
    header, rows = real_rows(5)
    order = list(reversed(range(len(header))))
    path = write_csv(
        tmp_path / "reordered.csv", [header[i] for i in order], [[r[i] for i in order] for r in rows]
    )
    files, columns = checks.read_headers([write_csv(tmp_path / "a.csv", header, rows), path], REQUIRED)
    assert columns == [c for c in header if c in REQUIRED]
    assert files[1].known_columns == list(reversed(columns)) and files[1].needs_normalising(columns)


def test_an_unknown_column_is_reported_not_refused(tmp_path):
    header, rows = real_rows(3)
    path = write_csv(tmp_path / "extra.csv", ["taxi_id", *header, ""], [["t1", *r, "x"] for r in rows])
    found = checked(path)
    assert found.unknown_columns == ["taxi_id", f"(unnamed, position {len(header) + 2})"]
    assert found.known_columns == header and found.needs_normalising(header)


def test_a_column_named_twice_is_refused(tmp_path):
    path = write_span(tmp_path, 1, header="fare,tips,company,fare\n", rows="1.0,0.5,A,2.0\n")
    with pytest.raises(checks.InputError, match="names the column\\(s\\) fare more than once"):
        checks.read_headers([path], REQUIRED)


def test_quoted_fields_with_commas_quotes_and_line_breaks_are_read(tmp_path):
    header, rows = real_rows(3)
    company = header.index("company")
    rows[0][company] = 'Taxi, "Affiliation"\nServices'
    path = write_csv(tmp_path / "quoted.csv", header, rows)
    assert '"Taxi, ""Affiliation""\nServices"' in path.read_text()
    found = checked(path)
    assert found.rows == 3 and found.rows_with_line_breaks == 1 and found.needs_normalising(header)


def test_a_truncated_row_is_named_by_its_first_line(tmp_path):
    header, rows = real_rows(3)
    rows[0][header.index("company")] = "two\nlines"
    rows[2] = rows[2][:-1]
    path = write_csv(tmp_path / "truncated.csv", header, rows)
    with pytest.raises(checks.InputError, match=f"line 5: {len(header) - 1} field\\(s\\), expected"):
        checked(path)


def test_rows_without_the_labels_source_are_counted_and_named(tmp_path):
    header, rows = real_rows(10)
    for row in rows[3:6]:
        row[header.index("tips")] = ""
    path = write_csv(tmp_path / "no_tips.csv", header, rows)
    with pytest.raises(checks.InputError) as error:
        checked(path, span=20131)
    message = str(error.value)
    assert str(path) in message and "cannot be computed for 3 of its 10 rows" in message
    assert "first: line 5 has no tips" in message
    checked(path, span=None, required=features.REQUIRED_COLUMNS)  # serving logs carry no label


def test_an_hour_that_disagrees_with_the_timestamp_is_refused(tmp_path):
    header, rows = real_rows(20)
    hour = header.index("trip_start_hour")
    rows[7][hour] = str((int(rows[7][hour]) + 6) % 24)
    path = write_csv(tmp_path / "shifted.csv", header, rows)
    with pytest.raises(checks.InputError) as error:
        checked(path, span=7)  # numbered so that only the columns' agreement is checked
    assert "in 1 of its 20 rows the hour, day of week or month disagrees" in str(error.value)
    assert "line 9 has trip_start_hour" in str(error.value)


def test_an_hour_no_clock_gives_is_left_to_the_schema(tmp_path):
    header, rows = real_rows(20)
    rows[3][header.index("trip_start_hour")] = "25"  # out of the schema's domain: it reports that
    assert checked(write_csv(tmp_path / "hour25.csv", header, rows), span=7).rows == 20


def test_a_trip_outside_its_half_year_is_refused_and_other_numberings_are_not_checked(tmp_path):
    header, rows = real_rows(200)
    timestamp = header.index(features.TIMESTAMP)
    rows = [row for row in rows if taxi_sample.span_of(int(row[timestamp])) == 20141]
    path = write_csv(tmp_path / "span.csv", header, rows)
    assert checked(path, span=20141).rows == len(rows) > 10
    with pytest.raises(checks.InputError) as error:
        checked(path, span=20142)
    assert f"{len(rows)} of its {len(rows)} rows start outside span 20142 (2014-07-01 to 2015-01-01" in str(
        error.value
    )
    checked(path, span=7)  # not a YYYYH number: the span's time is not checked


def test_every_span_of_the_real_sample_passes(tmp_path):
    taxi_sample.write_spans(sample_csv_path(), tmp_path)
    for span, files in checks.discover_spans(tmp_path).items():
        for path in files:
            found = checked(path, span=span)
            assert found.rows > 400 and not found.unknown_columns
