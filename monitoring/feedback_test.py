"""Feedback as received: malformed rows refused with the field named, one label per trip, unknown trips
counted once the log has had time to show them."""

import pytest

from models import features
from monitoring import feedback
from tests.support import request_logs


def _log(folder, rows):
    """A request log as a server writes it (closed file): rows of (request_id, trip, fare, prediction)."""
    request_logs.write_request_log(folder, [
        {"request_id": request_id, "trip": trip, "time": "2026-11-30T08:00:00+00:00", "model_version": "1",
         "route": "stable", "prediction": prediction, "fare": fare}
        for request_id, trip, fare, prediction in rows
    ])  # fmt: skip


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"trip": 0, "tips": 1.0}, "request_id is missing"),
        ({"request_id": "a", "tips": "lots"}, "tips must be a number, got 'lots'"),
        ({"request_id": "a"}, "tips is missing"),
        ({"request_id": "a", "tips": -1}, "tips and fare are amounts in dollars, at least 0"),
        ({"request_id": "a", "tips": 1, "trip": 0.5}, "trip must be an integer, got 0.5"),
        ({"request_id": "a", "tips": float("nan")}, "tips must be a finite number"),
        ("not an object", "expected an object with request_id, tips"),
    ],
)
def test_a_malformed_row_is_refused_naming_its_field(row, reason):
    valid, refused = feedback.parse([{"request_id": "ok", "tips": 1.0}, row])
    assert [f.request_id for f in valid] == ["ok"]
    assert len(refused) == 1 and refused[0].startswith("row 1: ") and reason in refused[0]


def test_the_first_label_of_a_trip_is_kept_and_a_second_refused(tmp_path):
    store = feedback.FeedbackStore(tmp_path)
    first, _ = feedback.parse([{"request_id": "a", "tips": 3.0}, {"request_id": "a", "trip": 1, "tips": 0}])
    assert store.add(first) == (first, [])
    again, _ = feedback.parse([{"request_id": "a", "tips": 9.0}])
    stored, duplicates = feedback.FeedbackStore(tmp_path).add(again)  # a new process knows the stored ones
    assert stored == [] and duplicates == again
    assert [(f.key, f.tips) for f in feedback.read_feedback(tmp_path)] == [(("a", 0), 3.0), (("a", 1), 0.0)]


def test_joining_labels_trips_counts_unknown_ones_after_the_grace_period(tmp_path):
    _log(tmp_path / "log", [("a", 0, "10.0", 0.9), ("a", 1, "", 0.2), ("b", 0, "20.0", 0.1)])
    received, _ = feedback.parse(
        [
            {"request_id": "a", "tips": 2.5},  # 25 % of 10.00: a big tipper
            {"request_id": "a", "trip": 1, "tips": 1.0, "fare": 5.0},  # the fare only the feedback knows
            {"request_id": "b", "tips": 0},
            {"request_id": "zzz", "tips": 1.0},  # no such trip
        ],
        received=1000.0,
    )
    requests = feedback.read_requests(tmp_path / "log")

    waiting = feedback.join(requests, received, grace_seconds=30, now=1010.0)
    late = feedback.join(requests, received, grace_seconds=30, now=1031.0)

    assert waiting.waiting == 1 and waiting.unknown == []
    assert [f.request_id for f in late.unknown] == ["zzz"] and late.waiting == 0
    labels = {(r["request_id"], r["trip"]): r[features.LABEL] for r in late.labelled}
    assert labels == {("a", "0"): 1, ("a", "1"): 0, ("b", "0"): 0}
