"""What each model server exposes at `/metrics` (Prometheus conventions: snake_case, units, labels).

The alerting and recording rules (serving/prometheus/) and the canary analysis read these names.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latency buckets in seconds: a single trip is answered in ~2 ms, a batch in tens.
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PREDICTION_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 10))


class ServerMetrics:
    def __init__(self, decision_threshold: float):
        self.decision_threshold = decision_threshold
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "taxi_requests",
            "Prediction requests answered, by model version, route and HTTP status.",
            ["version", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "taxi_request_duration_seconds",
            "Time to answer a prediction request, in the model server.",
            ["version", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.trips = Counter(
            "taxi_predicted_trips",
            "Trips predicted (a request may hold several).",
            ["version", "route"],
            registry=self.registry,
        )
        self.positive = Counter(
            "taxi_predicted_big_tippers",
            "Trips predicted to be big tippers (probability at or above the decision threshold).",
            ["version", "route"],
            registry=self.registry,
        )
        self.prediction = Histogram(
            "taxi_prediction",
            "Predicted big-tipper probability per trip.",
            ["version", "route"],
            buckets=PREDICTION_BUCKETS,
            registry=self.registry,
        )
        self.missing = Counter(
            "taxi_feature_missing",
            "Model inputs a request left out, per feature (treated as missing).",
            ["version", "feature"],
            registry=self.registry,
        )
        self.out_of_domain = Counter(
            "taxi_feature_out_of_domain",
            "Values outside the schema's domain, per feature.",
            ["version", "feature"],
            registry=self.registry,
        )
        self.loaded = Gauge(
            "taxi_model_loaded",
            "1 while a version is loaded and serving, per version.",
            ["version"],
            registry=self.registry,
        )

    def record(self, version: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(version, route, str(status)).inc()
        self.latency.labels(version, route).observe(seconds)

    def record_predictions(self, version: str, route: str, probabilities, missing: dict, out_of_domain: dict):
        self.trips.labels(version, route).inc(len(probabilities))
        self.positive.labels(version, route).inc(
            int(sum(p >= self.decision_threshold for p in probabilities))
        )
        histogram = self.prediction.labels(version, route)
        for probability in probabilities:
            histogram.observe(probability)
        for feature, count in missing.items():
            self.missing.labels(version, feature).inc(count)
        for feature, count in out_of_domain.items():
            self.out_of_domain.labels(version, feature).inc(count)
