"""Drift of served inputs: the served window leaves a shadow's copies and older trips out; the table
orders features by their distance relative to the skew threshold, and marks those above it."""

from tensorflow_metadata.proto.v0 import schema_pb2

from config import folders
from monitoring import served_drift
from tests.support import request_logs


def _schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name, threshold in (("fare", 0.1), ("trip_miles", 0.2), ("payment_type", None), ("company", 0.1)):
        feature = schema.feature.add(
            name=name, type=schema_pb2.BYTES if name == "payment_type" else schema_pb2.FLOAT
        )
        if threshold is not None:
            feature.skew_comparator.jensen_shannon_divergence.threshold = threshold
    return schema


def test_the_table_puts_the_worst_relative_to_its_threshold_first():
    found = {"fare": ("jensen_shannon_divergence", 0.05), "trip_miles": ("jensen_shannon_divergence", 0.3),
             "payment_type": ("infinity_norm", 0.4)}  # fmt: skip
    table = served_drift.skew_table(_schema(), found)
    assert [(r["feature"], r["threshold"], r["above"]) for r in table] == [
        ("trip_miles", 0.2, True),  # 1.5 times its threshold
        ("fare", 0.1, False),  # 0.5 times
        ("payment_type", None, False),  # not gated: its distance over 10
    ]
    assert table[0]["measure"] == "jensen_shannon_divergence" and table[0]["value"] == 0.3


def test_the_served_window_leaves_the_shadow_and_older_trips_out(tmp_path):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    request_logs.write_request_log(settings.request_log_dir, [
        {"request_id": request_id, "trip": 0, "time": f"2026-11-30T08:{minute:02d}:00+00:00", "model_version": "7",
         "route": route, "prediction": 0.5}
        for request_id, minute, route in (("a", 0, "stable"), ("b", 5, "stable"), ("b", 5, "shadow"), ("c", 6, "canary"))
    ])  # fmt: skip
    since = 1796025900.0  # 2026-11-30T08:05:00Z
    assert [(r["request_id"], r["route"]) for r in served_drift.served_since(settings, since)] == [
        ("b", "stable"),
        ("c", "canary"),
    ]
    assert len(served_drift.served_since(settings, 0.0)) == 3
    found = served_drift.against_training(settings)
    assert found["rows"] == [] and found["served_trips"] == 3 and "fewer than" in found["why_empty"]
