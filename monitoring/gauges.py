"""The monitor's Prometheus metrics: live, evaluated and estimated quality per version, the feedback
counts, and the training data's missing rates; `export` sets them from a refresh's figures
(monitoring/refresh.py), and removes the series a refresh no longer has (a version that left), so that
Prometheus marks them stale and their alerts clear. The alerting rules (monitoring/prometheus/) read them
by these names."""

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitoring import refresh

LIVE_LABELS = ["version", "route", "slice"]


class Gauges:
    def __init__(self):
        self.registry = CollectorRegistry()
        self._exported: dict[Gauge, set[tuple[str, ...]]] = {}  # per gauge, the label values last set
        self._live_quality()
        self._evaluated_and_estimated()
        self._feedback()
        self.training_missing = Gauge(
            "taxi_training_missing_ratio",
            "Share of empty values per model input in the newest span the pipeline read.",
            ["feature"],
            registry=self.registry,
        )

    def _gauge(self, name: str, documentation: str, labels: list[str] = LIVE_LABELS) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def _live_quality(self) -> None:
        self.auc = self._gauge("taxi_live_auc", "AUC on the newest labelled served trips.")
        self.accuracy = self._gauge(
            "taxi_live_accuracy", "Accuracy at the decision threshold on the newest labelled trips."
        )
        self.calibration = self._gauge(
            "taxi_live_calibration", "Mean prediction over mean label, labelled trips."
        )
        self.positive_rate = self._gauge(
            "taxi_live_positive_rate", "Share of labelled trips predicted big tippers."
        )
        self.trips = self._gauge("taxi_live_labelled_trips", "Labelled trips in the live-quality window.")

    def _evaluated_and_estimated(self) -> None:
        self.evaluated_auc = self._gauge(
            "taxi_evaluated_auc", "AUC the Evaluator measured for the version.", ["version", "slice"]
        )
        self.evaluated_accuracy = self._gauge(
            "taxi_evaluated_accuracy", "Accuracy the Evaluator measured.", ["version", "slice"]
        )
        self.evaluated_positive_rate = self._gauge(
            "taxi_evaluated_positive_rate",
            "Share predicted big tippers in the version's evaluation.",
            ["version", "slice"],
        )
        self.estimated_auc = self._gauge(
            "taxi_estimated_auc", "CBPE's AUC for the version's trips not labelled yet.", ["version"]
        )
        self.estimated_accuracy = self._gauge(
            "taxi_estimated_accuracy", "CBPE's accuracy for unlabelled trips.", ["version"]
        )

    def _feedback(self) -> None:
        self.received = Counter(
            "taxi_feedback_rows", "Feedback rows received and stored.", registry=self.registry
        )
        self.malformed = Counter(
            "taxi_feedback_malformed_rows", "Feedback rows refused as malformed.", registry=self.registry
        )
        self.duplicates_refused = Counter(
            "taxi_feedback_duplicate_rows",
            "Feedback rows refused: the trip was labelled already.",
            registry=self.registry,
        )
        self.unknown = Gauge(
            "taxi_feedback_unknown_trips",
            "Feedback naming no logged trip (past the grace period).",
            registry=self.registry,
        )
        self.duplicates = Gauge(
            "taxi_feedback_duplicates",
            "Feedback for a trip labelled already (the first kept).",
            registry=self.registry,
        )

    def set_training_missing(self, ratios: dict[str, float]) -> None:
        for feature, ratio in ratios.items():
            self.training_missing.labels(feature).set(ratio)

    def count_feedback(self, stored: int, malformed: int, duplicates: int) -> None:
        self.received.inc(stored)
        self.malformed.inc(malformed)
        self.duplicates_refused.inc(duplicates)

    def export(self, snapshot: dict) -> None:
        """Sets every gauge from one refresh's figures (a figure that could not be computed is NaN) and
        removes the series it does not have."""
        values: dict[Gauge, dict[tuple[str, ...], float]] = {}
        for entry in snapshot["live"]:
            for slice_name in refresh.SLICES:
                figures = entry[slice_name]
                labels = (entry["version"], entry["route"], slice_name)
                for gauge, key in ((self.auc, "auc"), (self.accuracy, "accuracy"), (self.calibration, "calibration"), (self.positive_rate, "positive_rate"), (self.trips, "trips")):  # fmt: skip
                    values.setdefault(gauge, {})[labels] = _nan(figures[key])
        for version, figures in snapshot["evaluated"].items():
            for slice_name in refresh.SLICES:
                found = (figures or {}).get(slice_name, {})
                for gauge, key in ((self.evaluated_auc, "auc"), (self.evaluated_accuracy, "accuracy"), (self.evaluated_positive_rate, "positive_rate")):  # fmt: skip
                    values.setdefault(gauge, {})[(version, slice_name)] = _nan(found.get(key))
        for entry in snapshot["estimated"]:
            for gauge, key in ((self.estimated_auc, "auc"), (self.estimated_accuracy, "accuracy")):
                values.setdefault(gauge, {})[(entry["version"],)] = _nan(entry["unlabelled"][key])
        for gauge in values.keys() | self._exported.keys():
            self._set(gauge, values.get(gauge, {}))
        self.unknown.set(snapshot["feedback"]["unknown"])
        self.duplicates.set(snapshot["feedback"]["duplicates"])

    def _set(self, gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
        """Sets `gauge`'s series to `values`, new ones first, then removes the others: a scrape between
        the two sees no series missing that is still there."""
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        for labels in self._exported.get(gauge, set()) - values.keys():
            gauge.remove(*labels)
        self._exported[gauge] = set(values)


def _nan(value) -> float:
    return float("nan") if value is None else float(value)
