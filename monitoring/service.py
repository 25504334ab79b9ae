"""The monitor: a process beside the model servers that takes feedback and measures live quality.

    POST /v1/feedback   {"feedback": [{"request_id": ..., "trip": 0, "tips": 2.5, "fare": 12.5}, ...]}
    GET  /v1/monitor    the latest figures, as JSON (what `make monitor` shows)
    GET  /metrics       the same for Prometheus: live, evaluated and estimated quality per version

Every `MONITOR_REFRESH_SECONDS` it joins the request log with the feedback received (monitoring/feedback.py)
and computes, per model version and route, quality over the newest `LIVE_QUALITY_WINDOW` labelled trips,
overall and on the key slice; the estimate for trips not labelled yet (CBPE, monitoring/quality.py,
recalibrated on the version's labelled trips); and each version's figures from its evaluation, read
from TFMA's results through ML Metadata. The alerting rules (monitoring/prometheus/) compare them.

The stack routes /v1/feedback to it and Prometheus scrapes it (`taxi-pipeline monitor start` attaches it).
"""

import argparse
import contextlib
import csv
import json
import threading
import time
from pathlib import Path

import numpy as np
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import folders
from config import monitoring as monitoring_config
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from monitoring import archive, quality, spans
from monitoring import feedback as feedback_io
from reports import runs

SLICES = ("overall", "key_slice")


class Gauges:
    def __init__(self):
        self.registry = CollectorRegistry()
        labels = ["version", "route", "slice"]
        make = lambda name, doc, names=labels: Gauge(name, doc, names, registry=self.registry)  # noqa: E731
        self.auc = make("taxi_live_auc", "AUC on the newest labelled served trips.")
        self.accuracy = make(
            "taxi_live_accuracy", "Accuracy at the decision threshold on the newest labelled trips."
        )
        self.calibration = make("taxi_live_calibration", "Mean prediction over mean label, labelled trips.")
        self.positive_rate = make("taxi_live_positive_rate", "Share of labelled trips predicted big tippers.")
        self.trips = make("taxi_live_labelled_trips", "Labelled trips in the live-quality window.")
        self.evaluated_auc = make(
            "taxi_evaluated_auc", "AUC the Evaluator measured for the version.", ["version", "slice"]
        )
        self.evaluated_accuracy = make(
            "taxi_evaluated_accuracy", "Accuracy the Evaluator measured.", ["version", "slice"]
        )
        self.evaluated_positive_rate = make(
            "taxi_evaluated_positive_rate",
            "Share predicted big tippers in the version's evaluation.",
            ["version", "slice"],
        )
        self.estimated_auc = make(
            "taxi_estimated_auc", "CBPE's AUC for the version's trips not labelled yet.", ["version"]
        )
        self.estimated_accuracy = make(
            "taxi_estimated_accuracy", "CBPE's accuracy for unlabelled trips.", ["version"]
        )
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
        self.training_missing = Gauge(
            "taxi_training_missing_ratio",
            "Share of empty values per model input in the newest span the pipeline read.",
            ["feature"],
            registry=self.registry,
        )


def evaluated_figures(metadata_path: Path, version: str) -> dict | None:
    """What the Evaluator measured for the model pushed as `version`, on held-out data: overall and on the
    key slice; None when no run recorded pushing it."""
    found = runs.evaluation_of_pushed_version(metadata_path, pipeline_config.PIPELINE_NAME, version)
    if found is None:
        return None
    from reports import evaluation_results  # TFMA: 10-15 s to import, only once a version is served

    rows, _ = evaluation_results.load_rows(found)
    key = evaluation_results.slice_name(pipeline_config.KEY_SLICE)
    figures = {}
    for name, slice_key in (("overall", evaluation_results.OVERALL), ("key_slice", key)):
        _, metrics, matrices = rows.get(slice_key, (None, {}, []))
        figures[name] = {
            "auc": metrics.get("auc"),
            "accuracy": metrics.get("binary_accuracy"),
            "positive_rate": _positive_rate(matrices),
            "examples": metrics.get("example_count"),
        }
    return figures


def _positive_rate(matrices: list[dict]) -> float | None:
    """Share predicted positive at the decision threshold, from TFMA's confusion matrices."""
    for matrix in matrices:
        if abs(matrix["threshold"] - pipeline_config.REPORTED_DECISION_THRESHOLD) < 1e-6:
            total = sum(
                matrix[k] for k in ("true_positives", "false_positives", "true_negatives", "false_negatives")
            )
            return (matrix["true_positives"] + matrix["false_positives"]) / total if total else None
    return None


def training_reference(settings: folders.Settings) -> tuple[str, list[Path]] | None:
    """(span folder name, CSV files) of the newest span the pipeline read, without the trips the loop
    exported from served traffic (`served-*.csv`): what served inputs are compared with."""
    spans_dir = settings.checked_spans_dir
    span_folders = (
        sorted(spans_dir.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*")) if spans_dir.is_dir() else []
    )
    for folder in reversed(span_folders):
        files = [f for f in sorted(folder.glob("*.csv")) if not f.name.startswith(spans.FILE_PREFIX)]
        if files:
            return folder.name, files
    return None


def training_missing_ratios(settings: folders.Settings) -> dict[str, float]:
    """Per model input, the share of empty values in the training reference: what the served missing
    rates are compared with."""
    reference = training_reference(settings)
    if reference is None:
        return {}
    empty, rows = dict.fromkeys(features.MODEL_INPUTS, 0), 0
    for path in reference[1]:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows += 1
                for name in empty:
                    empty[name] += (row.get(name) or "").strip() == ""
    return {name: count / rows for name, count in empty.items()} if rows else {}


class Monitor:
    """What the refresh computes, kept for /v1/monitor and exported to the gauges."""

    def __init__(self, settings: folders.Settings, window: int, grace_seconds: float):
        self.settings, self.window, self.grace = settings, window, grace_seconds
        self.gauges = Gauges()
        self.store = feedback_io.FeedbackStore(settings.feedback_dir)
        self.latest: dict = {"refreshed": None}
        self._evaluated: dict[str, dict | None] = {}
        self._lock = threading.Lock()
        for feature, ratio in training_missing_ratios(settings).items():
            self.gauges.training_missing.labels(feature).set(ratio)

    def refresh(self) -> dict:
        archive.archive_old_logs(self.settings.request_log_dir)
        requests = feedback_io.read_requests(self.settings.request_log_dir)
        joined = feedback_io.join(requests, feedback_io.read_feedback(self.settings.feedback_dir), self.grace)
        threshold = pipeline_config.REPORTED_DECISION_THRESHOLD
        served = sorted({r["model_version"] for r in requests})
        snapshot = {
            "refreshed": time.time(),
            "logged_trips": len(requests),
            "labelled_trips": len({(r["request_id"], r["trip"]) for r in joined.labelled}),
            "feedback": {
                "unknown": len(joined.unknown),
                "duplicates": len(joined.duplicates),
                "waiting": joined.waiting,
            },
            "live": quality.live(joined.labelled, self.window, threshold, pipeline_config.KEY_SLICE),
            "estimated": [estimates(version, requests, joined.labelled, threshold) for version in served],
            "evaluated": {version: self._evaluation(version) for version in served},
            "shadow_agreement": shadow_agreement(requests, threshold),
        }
        self._export(snapshot)
        with self._lock:
            self.latest = snapshot
        return snapshot

    def _evaluation(self, version: str) -> dict | None:
        if self._evaluated.get(version) is None:
            try:
                self._evaluated[version] = evaluated_figures(self.settings.metadata_path, version)
            except Exception as error:  # an unreadable result must not stop the monitor: say so, retry later
                print(f"monitor: the evaluation of version {version} could not be read: {error}", flush=True)
                self._evaluated[version] = None
        return self._evaluated[version]

    def _export(self, snapshot: dict) -> None:
        g = self.gauges
        for entry in snapshot["live"]:
            for slice_name in SLICES:
                figures = entry[slice_name]
                labels = (entry["version"], entry["route"], slice_name)
                for gauge, key in ((g.auc, "auc"), (g.accuracy, "accuracy"), (g.calibration, "calibration"), (g.positive_rate, "positive_rate")):  # fmt: skip
                    gauge.labels(*labels).set(_nan(figures[key]))
                g.trips.labels(*labels).set(figures["trips"])
        for version, figures in snapshot["evaluated"].items():
            for slice_name in SLICES:
                values = (figures or {}).get(slice_name, {})
                g.evaluated_auc.labels(version, slice_name).set(_nan(values.get("auc")))
                g.evaluated_accuracy.labels(version, slice_name).set(_nan(values.get("accuracy")))
                g.evaluated_positive_rate.labels(version, slice_name).set(_nan(values.get("positive_rate")))
        for entry in snapshot["estimated"]:
            g.estimated_auc.labels(entry["version"]).set(_nan(entry["unlabelled"]["auc"]))
            g.estimated_accuracy.labels(entry["version"]).set(_nan(entry["unlabelled"]["accuracy"]))
        g.unknown.set(snapshot["feedback"]["unknown"])
        g.duplicates.set(snapshot["feedback"]["duplicates"])


def estimates(version: str, requests: list[dict], labelled: list[dict], threshold: float) -> dict:
    """CBPE for one version's answered trips (not the shadow's): the estimate for trips still without a
    label, recalibrated on the labelled ones; and, as a check of the method, the estimate for the newer
    half of the labelled trips from the older half alone, beside what those trips then realised."""
    answered = [
        r for r in requests if r["model_version"] == version and r["route"] != serving_config.SHADOW_ROUTE
    ]
    mine = sorted(
        (
            r
            for r in labelled
            if r["model_version"] == version
            and r["route"] != serving_config.SHADOW_ROUTE
            and r[features.LABEL] is not None
        ),
        key=lambda r: r["time"],
    )
    keys = {(r["request_id"], r["trip"]) for r in mine}
    waiting = [float(r["prediction"]) for r in answered if (r["request_id"], r["trip"]) not in keys]
    labels = [r[features.LABEL] for r in mine]
    scores = [float(r["prediction"]) for r in mine]
    half = len(mine) // 2
    older = quality.Calibrator(labels[:half], scores[:half])
    return {
        "version": version,
        "unlabelled": quality.estimated(waiting, threshold, quality.Calibrator(labels, scores)),
        "check": {
            "trips": len(mine) - half,
            "estimated": quality.estimated(scores[half:], threshold, older),
            "realised": quality.measured(labels[half:], scores[half:], threshold),
        },
    }


def shadow_agreement(requests: list[dict], threshold: float) -> list[dict]:
    """Per (stable version, shadow version): how often the two decided alike on the same trips, and the
    mean absolute difference of their probabilities."""
    by_trip: dict[tuple, dict] = {}
    for row in requests:
        by_trip.setdefault((row["request_id"], row["trip"]), {})[row["route"]] = row
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for routes in by_trip.values():
        if "shadow" in routes and "stable" in routes:
            key = (routes["stable"]["model_version"], routes["shadow"]["model_version"])
            pairs.setdefault(key, []).append(
                (float(routes["stable"]["prediction"]), float(routes["shadow"]["prediction"]))
            )
    found = []
    for (stable, shadow), values in sorted(pairs.items()):
        a, b = np.array(values).T
        found.append(
            {
                "stable": stable,
                "shadow": shadow,
                "trips": len(values),
                "decisions_agree": float(((a >= threshold) == (b >= threshold)).mean()),
                "mean_abs_difference": float(np.abs(a - b).mean()),
            }  # fmt: skip
        )
    return found


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def create_app(settings: folders.Settings, window: int = monitoring_config.LIVE_QUALITY_WINDOW,
               refresh_seconds: float = monitoring_config.MONITOR_REFRESH_SECONDS,
               grace_seconds: float = monitoring_config.FEEDBACK_GRACE_SECONDS) -> Starlette:  # fmt: skip
    monitor = Monitor(settings, window, grace_seconds)
    stop = threading.Event()

    def loop():
        while True:
            try:
                monitor.refresh()
            except Exception as error:  # one failed refresh must not end the monitor: say why, go on
                print(f"monitor: refresh failed: {type(error).__name__}: {error}", flush=True)
            if stop.wait(refresh_seconds):
                return

    async def receive(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            monitor.gauges.malformed.inc()
            return JSONResponse({"error": f"malformed JSON: {error}"}, status_code=400)
        rows = body.get("feedback") if isinstance(body, dict) else body
        if not isinstance(rows, list) or not rows:
            return JSONResponse(
                {"error": 'expected {"feedback": [{"request_id": ..., "tips": ...}, ...]}'}, status_code=400
            )
        valid, refused = feedback_io.parse(rows)
        stored, duplicates = monitor.store.add(valid)
        monitor.gauges.received.inc(len(stored))
        monitor.gauges.malformed.inc(len(refused))
        monitor.gauges.duplicates_refused.inc(len(duplicates))
        answer = {
            "accepted": len(stored),
            "refused": refused,
            "duplicates": [
                f"request {f.request_id}, trip {f.trip}: labelled already (the first label kept)"
                for f in duplicates
            ],
        }
        if stored:
            return JSONResponse(answer)
        status = 400 if refused else 409
        return JSONResponse(
            {"error": "; ".join(refused + answer["duplicates"]), **answer}, status_code=status
        )

    async def figures(request: Request) -> Response:
        return JSONResponse(monitor.latest)

    async def scrape(request: Request) -> Response:
        return Response(
            prometheus_client.generate_latest(monitor.gauges.registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        thread = threading.Thread(target=loop, daemon=True, name="monitor-refresh")
        thread.start()
        try:
            yield
        finally:
            stop.set()

    app = Starlette(
        routes=[
            Route(monitoring_config.FEEDBACK_PATH, receive, methods=["POST"]),
            Route("/v1/monitor", figures),
            Route("/metrics", scrape),
            Route("/ready", lambda request: JSONResponse({"ready": True})),
        ],
        lifespan=lifespan,
    )
    app.state.monitor = monitor
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m monitoring.service", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--refresh-seconds", type=float, default=monitoring_config.MONITOR_REFRESH_SECONDS)
    args = parser.parse_args(argv)
    settings = folders.Settings.resolve(args.output_dir)
    app = create_app(settings, refresh_seconds=args.refresh_seconds)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
