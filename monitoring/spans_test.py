"""Labelled trips become span files once each, in their half-year, readable by the pipeline's checks."""

import csv

from config import pipeline as pipeline_config
from inputs import checks
from models import features
from monitoring import spans


def _labelled(request_id, timestamp, fare="10.0", tips=2.5, route="stable"):
    row = dict.fromkeys(features.SERVING_COLUMNS, "")
    row.update(
        request_id=request_id, trip="0", time="2026-11-30T08:00:00+00:00", route=route, model_version="1",
        payment_type="Credit Card", trip_start_timestamp=str(timestamp), fare=fare, trip_miles="1.5",
        trip_start_hour="0", trip_start_day="1", trip_start_month="1",
    )  # fmt: skip
    row[features.TIPS] = tips
    return row


def test_trips_are_written_once_into_their_half_years(tmp_path):
    july_2016, january_2017 = (
        1467331200,
        1483228800,
    )  # 2016-07-01 and 2017-01-01, 00:00 UTC (a Friday, a Sunday)
    first = [
        _labelled("a", july_2016),
        _labelled("b", january_2017),
        _labelled("a", july_2016, route="shadow"),
    ]

    written = spans.export(first, tmp_path)

    assert sorted(written.written) == [20162, 20171] and written.rows == 2
    with written.written[20162].open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["request_id"] == "a" and row[features.TIPS] == "2.5" and row["fare"] == "10.0"
    again = spans.export([*first, _labelled("c", july_2016, fare="")], tmp_path)
    assert again.rows == 0 and again.without_fare == 1 and again.exported_before == 2
    # The pipeline reads the file as training data, leaving the key columns out.
    [found], _ = checks.read_headers([written.written[20171]], features.REQUIRED_COLUMNS)
    assert found.unknown_columns == spans.KEY_COLUMNS
    checks.check_rows(found, 20171, pipeline_config.MAX_DUPLICATE_ROW_FRACTION)
