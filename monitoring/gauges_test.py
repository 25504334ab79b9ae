"""The gauges Prometheus scrapes carry a refresh's figures under the names and labels the alerting rules
read; a figure that could not be computed is NaN, not a stale or zero value."""

import math

import prometheus_client

from monitoring import gauges


def _measured(auc):
    return {"trips": 300, "auc": auc, "accuracy": 0.8, "calibration": 1.1, "positive_rate": 0.4}


def test_a_refresh_is_exported_with_its_labels_and_nan_where_unknown():
    exported = gauges.Gauges()
    exported.set_training_missing({"fare": 0.25})
    exported.count_feedback(stored=3, malformed=1, duplicates=2)
    exported.export({
        "live": [{"version": "7", "route": "stable", "overall": _measured(0.7), "key_slice": _measured(None)}],
        "evaluated": {"7": {"overall": {"auc": 0.75, "accuracy": 0.81, "positive_rate": None}}, "8": None},
        "estimated": [{"version": "7", "unlabelled": {"auc": None, "accuracy": 0.79}}],
        "feedback": {"unknown": 4, "duplicates": 5},
    })  # fmt: skip
    value = exported.registry.get_sample_value
    assert value("taxi_live_auc", {"version": "7", "route": "stable", "slice": "overall"}) == 0.7
    assert math.isnan(value("taxi_live_auc", {"version": "7", "route": "stable", "slice": "key_slice"}))
    assert value("taxi_live_labelled_trips", {"version": "7", "route": "stable", "slice": "key_slice"}) == 300
    assert value("taxi_evaluated_auc", {"version": "7", "slice": "overall"}) == 0.75
    assert math.isnan(value("taxi_evaluated_positive_rate", {"version": "7", "slice": "overall"}))
    assert math.isnan(value("taxi_evaluated_auc", {"version": "8", "slice": "key_slice"}))  # no evaluation
    assert math.isnan(value("taxi_estimated_auc", {"version": "7"}))
    assert value("taxi_estimated_accuracy", {"version": "7"}) == 0.79
    assert value("taxi_training_missing_ratio", {"feature": "fare"}) == 0.25
    assert (value("taxi_feedback_rows_total"), value("taxi_feedback_malformed_rows_total")) == (3, 1)
    assert value("taxi_feedback_duplicate_rows_total") == 2
    assert (value("taxi_feedback_unknown_trips"), value("taxi_feedback_duplicates")) == (4, 5)
    assert b"taxi_live_accuracy{" in prometheus_client.generate_latest(exported.registry)


def test_a_version_that_left_loses_its_series_and_the_others_keep_theirs():
    exported = gauges.Gauges()

    def snapshot(*versions):
        return {
            "live": [{"version": v, "route": "stable", "overall": _measured(0.7), "key_slice": _measured(0.6)} for v in versions],
            "evaluated": {v: {"overall": {"auc": 0.75, "accuracy": 0.81, "positive_rate": 0.3}} for v in versions},
            "estimated": [{"version": v, "unlabelled": {"auc": 0.7, "accuracy": 0.79}} for v in versions],
            "feedback": {"unknown": 0, "duplicates": 0},
        }  # fmt: skip

    exported.export(snapshot("7", "8"))
    exported.export(snapshot("7"))  # 8 was rolled back
    value = exported.registry.get_sample_value
    for version, expected in (("7", 0.7), ("8", None)):
        assert value("taxi_live_auc", {"version": version, "route": "stable", "slice": "overall"}) == expected
        assert (value("taxi_evaluated_auc", {"version": version, "slice": "overall"}) is None) == (
            expected is None
        )
        assert (value("taxi_estimated_auc", {"version": version}) is None) == (expected is None)
    scraped = prometheus_client.generate_latest(exported.registry).decode()
    assert 'version="7"' in scraped and 'version="8"' not in scraped
