"""What each model server exposes at `/metrics` (Prometheus conventions: snake_case, units, labels).

The alerting and recording rules (serving/prometheus/) and the canary analysis read these names.
"""

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

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
        self.prediction = BatchHistogram(
            "taxi_prediction",
            "Predicted big-tipper probability per trip.",
            ("version", "route"),
            PREDICTION_BUCKETS,
            self.registry,
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
        self._request_children: dict[tuple, tuple] = {}
        self._prediction_children: dict[tuple, tuple] = {}
        self._children: dict[tuple, object] = {}

    def record(self, version: str, route: str, status: int, seconds: float) -> None:
        key = (version, route, status)
        if key not in self._request_children:
            # A label set's children are looked up once: `labels()` validates and locks on every call.
            self._request_children[key] = (
                self.requests.labels(version, route, str(status)),
                self.latency.labels(version, route),
            )
        requests, latency = self._request_children[key]
        requests.inc()
        latency.observe(seconds)

    def record_predictions(self, version: str, route: str, probabilities, missing: dict, out_of_domain: dict):
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if (version, route) not in self._prediction_children:
            self._prediction_children[version, route] = (
                self.trips.labels(version, route),
                self.positive.labels(version, route),
            )
        trips, positive = self._prediction_children[version, route]
        trips.inc(len(probabilities))
        positive.inc(int(np.count_nonzero(probabilities >= self.decision_threshold)))
        self.prediction.observe_many((version, route), probabilities)
        for counter, counts in ((self.missing, missing), (self.out_of_domain, out_of_domain)):
            for feature, count in counts.items():
                self._child(counter, version, feature).inc(count)

    def _child(self, metric, *labels):
        """The metric's child for `labels`, looked up once: `labels()` validates and locks on every call."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class BatchHistogram:
    """A Prometheus histogram that takes a request's predictions at once.

    prometheus_client's `Histogram` takes one observation per call, which for a request of a thousand
    trips costs more than the model call; this one counts a batch into its buckets with NumPy and is
    exposed as a custom collector (prometheus_client's extension point), in the same text format.
    Updated and collected on the server's event loop only, so it needs no lock.
    """

    def __init__(self, name: str, documentation: str, labelnames: tuple, buckets: tuple, registry):
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self._bounds = np.array([*buckets, np.inf])
        self._counts: dict[tuple, np.ndarray] = {}
        self._sums: dict[tuple, float] = {}
        registry.register(self)

    def observe_many(self, labels: tuple, values: np.ndarray) -> None:
        if labels not in self._counts:
            self._counts[labels], self._sums[labels] = np.zeros(len(self._bounds), dtype=np.int64), 0.0
        # Bucket i counts values in (bound[i-1], bound[i]]: Prometheus's `le`, non-cumulative here.
        buckets = np.searchsorted(self._bounds, values, side="left")
        self._counts[labels] += np.bincount(buckets, minlength=len(self._bounds))
        self._sums[labels] += float(values.sum())

    def describe(self):
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self):
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, counts in self._counts.items():
            cumulative = np.cumsum(counts)
            family.add_metric(
                list(labels),
                buckets=[(floatToGoString(b), int(c)) for b, c in zip(self._bounds, cumulative, strict=True)],
                sum_value=self._sums[labels],
            )
        yield family
