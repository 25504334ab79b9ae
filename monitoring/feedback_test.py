"""Feedback as received: malformed rows refused with the field named, one label per trip (the join with
the request log is monitoring/store_test.py's)."""

import pytest

from monitoring import feedback


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
