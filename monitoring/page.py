"""`make monitor`: one self-contained HTML page of the served model, and a summary in the terminal.

- time series of traffic, latency, errors, inputs (missing, out of domain), outputs (positive rate) and
  live quality per version, from Prometheus range queries over the last `minutes`;
- the alerts pending or firing, each with what it means (the rules' `meaning` annotation);
- live quality beside what the Evaluator measured for the same version;
- CBPE's estimate beside what the same trips realised, and the estimate for trips not labelled yet;
- agreement between a shadow and stable on the same trips;
- drift of the served inputs (the request-log window the pipeline would read) against the newest span
  of training data, with TFDV and the schema's skew comparators and thresholds, as the pipeline's check.

The figures come from the monitor's own computation (monitoring/service.py) over the request log and
the feedback on disk, so the page can be written after the stack stopped; the time series need
Prometheus running.
"""

import csv
import datetime
import time
from pathlib import Path

from config import folders
from config import monitoring as monitoring_config
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from monitoring import feedback as feedback_io
from monitoring import service
from registry import versions
from reports import drift, html
from reports.html import escape, fmt, fmt_count
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
    paths = stack.StackPaths.of(settings)
    state = stack.status(paths)
    monitor = service.Monitor(
        settings, monitoring_config.LIVE_QUALITY_WINDOW, monitoring_config.FEEDBACK_GRACE_SECONDS
    )
    figures = monitor.refresh()
    prometheus_url = ((state.get("prometheus") or {}).get("url")) if state.get("running") else None
    end = time.time()
    start = end - minutes * 60
    series, alerts = [], []
    if prometheus_url:
        step = max(serving_config.PROMETHEUS_SCRAPE_SECONDS, minutes * 60 / 240)
        for title, y_label, query, legend, y_range in SERIES:
            result = prometheus.query_range(prometheus_url, query, start, end, step)
            series.append({
                "title": title, "y_label": y_label, "y_range": y_range,
                "lines": [
                    {"name": " ".join(f"{m['metric'].get(k, '')}" for k in legend),
                     "points": [(float(t), _number(v)) for t, v in m["values"]]}
                    for m in result
                ],
            })  # fmt: skip
        alerts = [
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
        "series": series,
        "alerts": alerts,
        "drift": served_drift(settings),
    }


def _number(value: str) -> float | None:
    number = float(value)
    return None if number != number else number


def served_drift(settings: folders.Settings) -> dict:
    """Skew distances of the served inputs against the training reference (the newest span the pipeline
    read, without the loop's exports), with the pipeline's comparators and thresholds. Served: the
    request log's trips since the production model was pushed (the window the pipeline's skew check
    reads), a shadow's copies left out."""
    reference = service.training_reference(settings)
    production = versions.production_version(settings.serving_model_dir)
    since = float(production) if production else 0.0
    rows = [
        r
        for r in feedback_io.read_requests(settings.request_log_dir)
        if r["route"] != serving_config.SHADOW_ROUTE
        and datetime.datetime.fromisoformat(r["time"]).timestamp() >= since
    ]
    if reference is None or len(rows) < pipeline_config.MIN_EXAMPLES_TO_GATE_ON_DISTANCE:
        return {
            "rows": [],
            "served_trips": len(rows),
            "why_empty": f"fewer than {pipeline_config.MIN_EXAMPLES_TO_GATE_ON_DISTANCE} trips served since production "
            "was pushed, or no training data read yet",
        }
    span, training = reference
    folder = settings.loop_dir / "drift"
    served, trained = folder / "served.csv", folder / "training.csv"
    folder.mkdir(parents=True, exist_ok=True)
    _write_rows(served, features.SERVING_COLUMNS, rows)
    _write_rows(trained, features.REQUIRED_COLUMNS, (r for path in training for r in _read_rows(path)))
    comparison = drift.Comparison(
        name="served vs training", kind=drift.SKEW, current_label="served", reference_label=span,
        current=drift.statistics(str(served), [served], folder / "statistics"),
        reference=drift.statistics(str(trained), [trained], folder / "statistics"),
    )  # fmt: skip
    schema = drift.read_schema(settings.schema_path)
    found = drift.distances(comparison, schema)
    table = []
    for feature in schema.feature:
        if feature.name not in found:
            continue
        measure, value = found[feature.name]
        _, threshold = drift.threshold_of(feature, drift.SKEW)
        table.append({"feature": feature.name, "measure": measure, "value": value, "threshold": threshold,
                      "above": threshold is not None and value > threshold})  # fmt: skip
    table.sort(key=lambda r: -(r["value"] / r["threshold"]) if r["threshold"] else -r["value"] / 10)
    return {"rows": table, "served_trips": len(rows), "training": span, "since_version": production}


def _read_rows(path: Path):
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _write_rows(path: Path, columns: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([row.get(c, "") for c in columns] for row in rows)


# --- the page -----------------------------------------------------------------------------------


def _table(headings: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        f'<table id="{table_id}" class="headline"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _alerts(data: dict) -> str:
    if not data["prometheus"]:
        return "<p>Prometheus is not running (the stack is stopped): no alerts to show.</p>"
    if not data["alerts"]:
        return '<p id="no-alerts">No alert is pending or firing.</p>'
    rows = [
        [
            escape(a["name"]),
            escape(a["state"]),
            escape(a["severity"] or ""),
            escape(", ".join(f"{k}={v}" for k, v in a["labels"].items())),
            escape(a["summary"] or ""),
            escape(a["meaning"] or ""),
        ]  # fmt: skip
        for a in data["alerts"]
    ]
    return _table(["alert", "state", "severity", "where", "summary", "what it means"], rows, "alerts")


def _quality(data: dict) -> str:
    figures = data["figures"]
    rows = []
    for entry in figures["live"]:
        evaluated = figures["evaluated"].get(entry["version"]) or {}
        for slice_name in service.SLICES:
            live, held_out = entry[slice_name], evaluated.get(slice_name, {})
            rows.append([
                escape(entry["version"]), escape(entry["route"]), escape(slice_name.replace("_", " ")),
                fmt_count(live["trips"]), fmt(live["accuracy"]), fmt(held_out.get("accuracy")),
                fmt(live["auc"]), fmt(held_out.get("auc")), fmt(live["positive_rate"]), fmt(held_out.get("positive_rate")),
                fmt(live["calibration"]),
            ])  # fmt: skip
    if not rows:
        return "<p>No labelled trips yet: send feedback (POST /v1/feedback, or `taxi-pipeline monitor feedback FILE`).</p>"
    return _table(
        ["version", "route", "slice", "labelled trips", "accuracy live", "evaluated", "AUC live", "evaluated",
         "positive rate live", "evaluated", "calibration live"],
        rows, "quality",
    )  # fmt: skip


def _estimates(data: dict) -> str:
    rows = []
    for entry in data["figures"]["estimated"]:
        check, waiting = entry["check"], entry["unlabelled"]
        realised, estimated = check["realised"], check["estimated"]
        error = (
            estimated["accuracy"] - realised["accuracy"]
            if estimated["accuracy"] is not None and realised["accuracy"] is not None
            else None
        )
        rows.append([
            escape(entry["version"]), fmt_count(check["trips"]), fmt(estimated["accuracy"]), fmt(realised["accuracy"]),
            html.fmt_signed(error), fmt(estimated["auc"]), fmt(realised["auc"]),
            fmt_count(waiting["trips"]), fmt(waiting["accuracy"]), fmt(waiting["auc"]),
        ])  # fmt: skip
    if not rows:
        return "<p>No served trips yet.</p>"
    return _table(
        ["version", "checked trips", "accuracy estimated", "realised", "error", "AUC estimated", "realised",
         "trips awaiting labels", "their estimated accuracy", "estimated AUC"],
        rows, "estimates",
    )  # fmt: skip


def _shadow(data: dict) -> str:
    pairs = data["figures"]["shadow_agreement"]
    if not pairs:
        return "<p>No shadow has run: `make serve-shadow VERSION=V` copies every request to V.</p>"
    rows = [
        [
            escape(p["stable"]),
            escape(p["shadow"]),
            fmt_count(p["trips"]),
            fmt(p["decisions_agree"]),
            fmt(p["mean_abs_difference"]),
        ]
        for p in pairs
    ]
    return _table(
        ["stable", "shadow", "trips both answered", "same decision", "mean |difference|"], rows, "shadow"
    )


def _drift(data: dict) -> str:
    found = data["drift"]
    if not found["rows"]:
        return f"<p>No drift table: {escape(found.get('why_empty', ''))} ({found['served_trips']} served trips).</p>"
    rows = [
        [
            escape(r["feature"]),
            escape(r["measure"]),
            fmt(r["value"]),
            fmt(r["threshold"]) if r["threshold"] is not None else "not gated",
            "<b>above</b>" if r["above"] else "",
        ]  # fmt: skip
        for r in found["rows"]
    ]
    return (
        f"<p>{found['served_trips']:,} trips served since version {escape(found['since_version'])} was pushed, "
        f"against training span {escape(found['training'])}, with the schema's skew comparators (the "
        "pipeline's check, at its thresholds).</p>"
        + _table(["feature", "measure", "distance", "threshold", ""], rows, "drift")
    )


def _charts(data: dict) -> str:
    if not data["series"]:
        return "<p>Prometheus is not running (the stack is stopped): no time series.</p>"
    charts = [
        html.time_series_chart(
            s["title"],
            s["lines"],
            s["y_label"],
            data["start"],
            data["end"],
            tuple(s["y_range"]) if s["y_range"] else None,
        )
        for s in data["series"]
    ]
    return f'<div class="plots">{"".join(charts)}</div>'


def render(data: dict) -> str:
    figures, state = data["figures"], data["stack"]
    feedback = figures["feedback"]
    serving = (
        f"{escape(state.get('mode'))}: stable {escape((state.get('stable') or {}).get('version'))}"
        + (f", candidate {escape(state['candidate']['version'])}" if state.get("candidate") else "")
        + (f" ({state['canary_percent']:g} %)" if state.get("mode") == "canary" else "")
        if state.get("running")
        else "stopped"
    )
    firing = [a for a in data["alerts"] if a["state"] == "firing"]
    verdict_class = "not-blessed" if firing else "blessed"
    verdict = f"{len(firing)} alert(s) firing" if firing else "no alert firing"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Served model monitor</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{html.STYLE}#quality td,#estimates td{{text-align:right}}</style></head>
<body>
<h1>Served model monitor</h1>
<p>{escape(data["output_dir"])} · written {escape(data["written"])} · serving: {serving}</p>
<p><span class="verdict {verdict_class}" id="verdict">{verdict}</span>
 {fmt_count(figures["logged_trips"])} trips logged, {fmt_count(figures["labelled_trips"])} labelled;
 feedback for unknown trips {fmt_count(feedback["unknown"])}, duplicates {fmt_count(feedback["duplicates"])},
 waiting for their trip {fmt_count(feedback["waiting"])}</p>
<h2>Alerts</h2>{_alerts(data)}
<h2>Over the last {data["minutes"]:g} minutes</h2>{_charts(data)}
<h2>Live quality against the evaluation</h2>
<p>Over the newest {monitoring_config.LIVE_QUALITY_WINDOW:,} labelled trips per version and route; "evaluated" is what the
Evaluator measured for the same version on held-out data (TFMA, read through ML Metadata).</p>{_quality(data)}
<h2>Estimated against realised quality (CBPE)</h2>
<p>Confidence-based performance estimation: the expected accuracy and AUC from calibrated probabilities alone.
Checked on each version's newer half of labelled trips, estimated from the older half; then the estimate for
trips whose labels have not arrived.</p>{_estimates(data)}
<h2>Shadow and stable</h2>{_shadow(data)}
<h2>Drift of served inputs against training data</h2>{_drift(data)}
</body></html>
"""


def summary_lines(data: dict) -> list[str]:
    figures = data["figures"]
    lines = [
        f"Monitor of {data['output_dir']}: {figures['logged_trips']:,} trips logged, {figures['labelled_trips']:,} labelled"
    ]
    for entry in figures["live"]:
        if entry["route"] == serving_config.SHADOW_ROUTE:
            continue
        live = entry["overall"]
        evaluated = (figures["evaluated"].get(entry["version"]) or {}).get("overall", {})
        lines.append(
            f"  version {entry['version']} ({entry['route']}): accuracy {fmt(live['accuracy'])} (evaluated "
            f"{fmt(evaluated.get('accuracy'))}), AUC {fmt(live['auc'])} (evaluated {fmt(evaluated.get('auc'))}) on "
            f"{live['trips']:,} labelled trips"
        )
    for alert in data["alerts"]:
        lines.append(f"  ALERT {alert['state']}: {alert['name']}: {alert['summary']}")
    above = [r["feature"] for r in data["drift"]["rows"] if r["above"]]
    if above:
        lines.append(f"  served inputs drifted past the skew thresholds: {', '.join(above)}")
    return lines


def write(settings: folders.Settings, minutes: float = 30) -> tuple[Path, list[str]]:
    data = collect(settings, minutes)
    path = settings.output_dir / PAGE_FILE
    write_atomically(path, render(data).encode())
    return path, summary_lines(data)
