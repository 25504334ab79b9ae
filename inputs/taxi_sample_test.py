"""The Chicago Taxi sample written as half-year spans."""

import datetime

from inputs import taxi_sample


def _seconds(year, month, day, hour=0):
    return int(datetime.datetime(year, month, day, hour, tzinfo=datetime.timezone.utc).timestamp())


def test_span_boundaries_are_half_years():
    assert taxi_sample.span_of(_seconds(2015, 1, 1)) == 20151
    assert taxi_sample.span_of(_seconds(2015, 6, 30, 23)) == 20151
    assert taxi_sample.span_of(_seconds(2015, 7, 1)) == 20152
    assert taxi_sample.span_of(_seconds(2016, 12, 31, 23)) == 20162


def test_sample_is_written_as_eight_spans_of_all_rows(tmp_path):
    rows_by_span = taxi_sample.write_spans(taxi_sample.sample_csv_path(), tmp_path)
    assert sum(rows_by_span.values()) == 15002
    assert list(rows_by_span) == [20131, 20132, 20141, 20142, 20151, 20152, 20161, 20162]
    written = tmp_path / "span-20152" / "data.csv"
    assert len(written.read_text().splitlines()) == rows_by_span[20152] + 1


def test_rewriting_unchanged_spans_keeps_file_times(tmp_path):
    taxi_sample.write_spans(taxi_sample.sample_csv_path(), tmp_path)
    written = tmp_path / "span-20131" / "data.csv"
    before = written.stat().st_mtime_ns
    taxi_sample.write_spans(taxi_sample.sample_csv_path(), tmp_path)
    assert written.stat().st_mtime_ns == before
