"""The batch-updated prediction histogram exposes what prometheus_client's own Histogram would."""

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from serving.metrics import PREDICTION_BUCKETS, BatchHistogram, ServerMetrics


def _samples(registry: CollectorRegistry, name: str) -> list[str]:
    return sorted(
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith(name) and not line.startswith(f"{name}_created")
    )


def test_a_batch_lands_in_the_buckets_one_observation_at_a_time_would():
    # Values on bucket bounds, between them, at 0 and 1, in two batches on two label sets.
    batches = [
        (("7", "stable"), np.array([0.0, 0.1, 0.1000001, 0.25, 0.5, 0.5, 0.9, 0.95, 1.0])),
        (("7", "stable"), np.array([0.3, 0.7])),
        (("8", "canary"), np.array([0.2, 0.6])),
    ]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch_histogram = BatchHistogram("taxi_prediction", "p", ("version", "route"), PREDICTION_BUCKETS, ours)
    reference = Histogram(
        "taxi_prediction", "p", ["version", "route"], buckets=PREDICTION_BUCKETS, registry=theirs
    )
    for labels, values in batches:
        batch_histogram.observe_many(labels, values)
        for value in values:
            reference.labels(*labels).observe(float(value))

    assert _samples(ours, "taxi_prediction") == _samples(theirs, "taxi_prediction")
    assert 'taxi_prediction_bucket{le="0.5",route="stable",version="7"} 7.0' in _samples(
        ours, "taxi_prediction"
    )


def test_a_request_counts_its_trips_and_big_tippers_at_the_threshold():
    metrics = ServerMetrics(decision_threshold=0.5)
    metrics.record_predictions("7", "stable", [0.2, 0.5, 0.9], {"fare": 1}, {})
    metrics.record_predictions("7", "stable", [0.49], {}, {"company": 1})
    text = generate_latest(metrics.registry).decode()
    assert 'taxi_predicted_trips_total{route="stable",version="7"} 4.0' in text
    assert 'taxi_predicted_big_tippers_total{route="stable",version="7"} 2.0' in text
    assert 'taxi_prediction_count{route="stable",version="7"} 4.0' in text
    assert 'taxi_feature_missing_total{feature="fare",version="7"} 1.0' in text
    assert 'taxi_feature_out_of_domain_total{feature="company",version="7"} 1.0' in text
