"""The data reference: validated spans and accepted changes, written whole, read back, explained when broken."""

import math

import pytest

from components import data_reference, unit_changes

SKETCHES = {
    "fare/trip_miles": unit_changes.Sketch(10, tuple(float(q) for q in unit_changes.SKETCH_QUANTILES)),
    "trip_miles/trip_seconds": unit_changes.Sketch(
        8, tuple(float(-q) for q in unit_changes.SKETCH_QUANTILES[::-1])
    ),
}


def _row(span, kind, factor, crossed, gated=True, feature="fare"):
    against = {"reference": "the reference: validated spans 20151-20161", "previous span": "span 20161"}
    return {
        "span": span,
        "kind": kind,
        "comparison": (f"span {span}" if span else "serving logs")
        + f" vs {against.get(kind, 'the training window')}",
        "feature": feature,
        "factor": factor,
        "crossed": crossed,
        "gated": gated,
    }


def test_a_validated_span_is_read_back_as_written(tmp_path):
    record = data_reference.SpanRecord(20162, "abc", 404, "2026-12-01T00:00:00+00:00", SKETCHES)
    data_reference.record_span(tmp_path, record)
    [read] = data_reference.recorded_spans(tmp_path).values()
    assert (read.span, read.digest, read.rows) == (20162, "abc", 404)
    for name, sketch in SKETCHES.items():
        assert read.sketches[name].rows == sketch.rows
        assert read.sketches[name].quantiles == pytest.approx(sketch.quantiles, abs=1e-6)
    assert [p.name for p in (tmp_path / "spans").iterdir()] == ["span-20162.json"]  # no temporary left


def test_a_broken_record_is_explained(tmp_path):
    (tmp_path / "spans").mkdir()
    (tmp_path / "spans" / "span-20162.json").write_text("{not json")
    with pytest.raises(
        data_reference.DataReferenceError, match=r"span-20162.json is not a validated span's record"
    ):
        data_reference.recorded_spans(tmp_path)
    (tmp_path / data_reference.ACCEPTED_CHANGES_FILE).write_text('{"accepted": [{"column": "fare"}]}')
    with pytest.raises(data_reference.DataReferenceError, match="fix it by hand rather than delete it"):
        data_reference.accepted_changes(tmp_path)


def test_an_accepted_change_records_who_when_why_and_the_span(tmp_path):
    assert data_reference.accepted_changes_key(tmp_path) == ""
    with pytest.raises(data_reference.DataReferenceError, match="needs a reason"):
        data_reference.accept_change(tmp_path, "fare", 1.3, 20162, "  ")
    assert data_reference.accepted_changes(tmp_path) == []

    change = data_reference.accept_change(tmp_path, "fare", 1.30123, 20162, "fare rates rose", "run 7: ...")

    assert data_reference.accepted_changes(tmp_path) == [change]
    assert (change.column, change.factor, change.span, change.reason) == (
        "fare",
        1.3012,
        20162,
        "fare rates rose",
    )
    assert "@" in change.accepted_by and change.accepted_at.endswith("+00:00")
    key = data_reference.accepted_changes_key(tmp_path)
    assert key != ""
    data_reference.accept_change(tmp_path, "tips", 1.1, 20171, "tips now include a fee", accepted_by="ana")
    assert data_reference.accepted_changes_key(tmp_path) != key
    assert [c.accepted_by for c in data_reference.accepted_changes(tmp_path)][-1] == "ana"


def test_a_span_is_put_in_the_units_of_the_changes_accepted_between(tmp_path):
    fare_up = data_reference.AcceptedChange("fare", 1.3, 20162, "rates", "ana", "2026-12-01T00:00:00+00:00")
    before = SKETCHES["fare/trip_miles"].quantiles[100]
    in_new_units = data_reference.in_units_of(SKETCHES, 20161, 20162, [fare_up])
    assert in_new_units["fare/trip_miles"].quantiles[100] == pytest.approx(before + math.log(1.3))
    assert in_new_units["trip_miles/trip_seconds"] == SKETCHES["trip_miles/trip_seconds"]  # no fare in it
    assert data_reference.in_units_of(SKETCHES, 20162, 20171, [fare_up]) == SKETCHES  # already in them
    undone = data_reference.in_units_of(in_new_units, 20162, 20161, [fare_up])  # a later span, back
    assert undone["fare/trip_miles"].quantiles[100] == pytest.approx(before)


def test_the_change_to_accept_is_the_oldest_span_whose_median_moved():
    rows = [
        _row(20160, "reference", 1.1, ["outside"]),  # crossed, but the median within real drift: not it
        _row(20161, "reference", 1.31, ["ks"]),  # on few rows only the KS crossed: a whole column still
        _row(20162, "reference", 1.29, ["factor"]),
        _row(20161, "previous span", 1.33, ["factor"]),
        _row(20161, "reference", 0.99, [], feature="tips"),
    ]
    factor, span, found_by = data_reference.measured_change(rows, "fare", "run-9", natural_factor=1.25)
    assert (factor, span) == (1.31, 20161)
    assert found_by == "run run-9: span 20161 vs the reference: validated spans 20151-20161: x1.310"


@pytest.mark.parametrize(
    "rows, message",
    [
        ([_row(20162, "reference", 1.01, [])], "found no change of units in fare in the training data"),
        (
            [_row(None, "serving", 1.6, ["factor"])],
            "only in the serving logs, which hold the push: fix the serving side",
        ),
        ([_row(20162, "reference", 1.05, ["outside"])], "changed in part of the rows only"),
        ([_row(20162, "reference", 1.6, ["factor"], gated=False)], "found no change of units in fare"),
    ],
    ids=["no change", "serving only", "a mixture", "not gated"],
)
def test_nothing_is_accepted_that_the_run_did_not_stop_on_as_a_whole_column(rows, message):
    with pytest.raises(data_reference.DataReferenceError, match=message):
        data_reference.measured_change(rows, "fare", "run-9", natural_factor=1.25)
