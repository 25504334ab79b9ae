"""`make monitor`: one self-contained HTML page of the served model, and a summary in the terminal.

This module collects what the page shows (rendered by monitoring/page_html.py):
- time series of traffic, latency, errors, inputs (missing, out of domain), outputs (positive rate) and
  live quality per version, from Prometheus range queries over the last `minutes`;
- the alerts pending or firing, each with what it means (the rules' `meaning` annotation);
- the monitor's figures: live quality beside what the Evaluator measured for the same version, CBPE's
  estimates, shadow agreement;
- drift of the served inputs (the request-log window the pipeline would read) against the newest span
  of training data, with TFDV and the schema's skew comparators and thresholds, as the pipeline's check
  (monitoring/served_drift.py).

The figures come from the monitor's own computation (monitoring/refresh.py) over the request log and
the feedback on disk (its store brought up to date first), so the page can be written after the stack
stopped; the time series need Prometheus running.
"""

import datetime
import time
from pathlib import Path

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from monitoring import evaluated, page_html, refresh, served_drift, store
from reports.output_files import write_atomically
from serving import prometheus, stack

PAGE_FILE = "monitor.html"

# (title, y label, PromQL, legend labels, y range)
SERIES = [
    ("Traffic", "requests/s", "sum by (version, route) (rate(taxi_requests_total[1m]))", ("version", "route"), None),
    ("Latency, p99", "seconds", "version:taxi_request_duration_seconds:p99_1m", ("version",), None),
    ("Server errors", "share of requests", "version:taxi_request_errors:ratio_rate1m", ("version",), (0, 1)),
    ("Missing inputs", "share of trips", "topk(6, version_feature:taxi_feature_missing:ratio_rate5m)", ("version", "feature"), (0, 1)),
    ("Out-of-domain inputs", "share of trips", "version_feature:taxi_feature_out_of_domain:ratio_rate5m > 0", ("version", "feature"), (0, 1)),
    ("Predicted big tippers", "share of trips", "version:taxi_predicted_big_tippers:ratio_rate5m", ("version",), (0, 1)),
    ("Live accuracy", "newest labelled trips", 'taxi_live_accuracy{slice="overall"}', ("version", "route"), (0, 1)),
    ("Live AUC", "newest labelled trips", 'taxi_live_auc{slice="overall"}', ("version", "route"), (0, 1)),
]  # fmt: skip


def collect(settings: folders.Settings, minutes: float = 30) -> dict:
    """Everything the page and the terminal summary show, as JSON-safe data."""
    state = stack.status(stack.StackPaths.of(settings))
    trips = store.TripStore.of(settings.feedback_dir)
    try:
        figures = refresh.compute(
            settings,
            trips,
            refresh.Window(),
            monitoring_config.FEEDBACK_GRACE_SECONDS,
            evaluated.EvaluatedFigures(settings.metadata_path),
            live=refresh.live_versions(settings),
        )
    finally:
        trips.close()
    prometheus_url = ((state.get("prometheus") or {}).get("url")) if state.get("running") else None
    end = time.time()
    start = end - minutes * 60
    return {
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "output_dir": str(settings.output_dir),
        "stack": {
            k: state.get(k) for k in ("running", "url", "mode", "stable", "candidate", "canary_percent")
        },
        "prometheus": prometheus_url,
        "minutes": minutes,
        "start": start,
        "end": end,
        "figures": figures,
        "series": time_series(prometheus_url, start, end, _step(minutes)) if prometheus_url else [],
        "alerts": alerts(prometheus_url) if prometheus_url else [],
        "drift": served_drift.against_training(settings),
    }


def _step(minutes: float) -> float:
    """Seconds between points: ~240 points over the window, none closer than Prometheus scrapes."""
    return max(serving_config.PROMETHEUS_SCRAPE_SECONDS, minutes * 60 / 240)


def time_series(prometheus_url: str, start: float, end: float, step: float) -> list[dict]:
    """Each of `SERIES` from `start` to `end` (Unix seconds), a point every `step` seconds: its lines,
    each a name (the legend labels' values) and (time, value or None) points."""
    found = []
    for title, y_label, query, legend, y_range in SERIES:
        result = prometheus.query_range(prometheus_url, query, start, end, step)
        found.append({
            "title": title, "y_label": y_label, "y_range": y_range,
            "lines": [
                {"name": " ".join(f"{m['metric'].get(k, '')}" for k in legend),
                 "points": [(float(t), _number(v)) for t, v in m["values"]]}
                for m in result
            ],
        })  # fmt: skip
    return found


def alerts(prometheus_url: str) -> list[dict]:
    """The alerts pending or firing, with their labels, summary and meaning."""
    return [
        {
            "name": a["labels"].get("alertname"),
            "state": a["state"],
            "since": a.get("activeAt"),
            "labels": {k: v for k, v in a["labels"].items() if k not in ("alertname", "severity")},
            "severity": a["labels"].get("severity"),
            "summary": a["annotations"].get("summary"),
            "meaning": a["annotations"].get("meaning"),
        }  # fmt: skip
        for a in prometheus.alerts(prometheus_url)
    ]


def _number(value: str) -> float | None:
    number = float(value)
    return None if number != number else number


def write(settings: folders.Settings, minutes: float = 30) -> tuple[Path, list[str]]:
    """Writes the page into the output folder; returns its path and the terminal summary's lines."""
    data = collect(settings, minutes)
    path = settings.output_dir / PAGE_FILE
    write_atomically(path, page_html.render(data).encode())
    return path, page_html.summary_lines(data)
