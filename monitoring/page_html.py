"""The monitor page's HTML, and its summary for the terminal, from `monitoring.page.collect`'s data:
rendering only (self-contained like the reports' pages: inline SVG and styles, no network)."""

import datetime

from config import serving as serving_config
from monitoring import refresh
from reports import html
from reports.html import escape, fmt, fmt_count


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
        for slice_name in refresh.SLICES:
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
<p>{_window(figures["window"])}; "evaluated" is what the
Evaluator measured for the same version on held-out data (TFMA, read through ML Metadata).</p>{_quality(data)}
<h2>Estimated against realised quality (CBPE)</h2>
<p>Confidence-based performance estimation: the expected accuracy and AUC from calibrated probabilities alone.
Checked on each version's newer half of labelled trips, estimated from the older half; then the estimate for
trips whose labels have not arrived.</p>{_estimates(data)}
<h2>Shadow and stable</h2>{_shadow(data)}
<h2>Drift of served inputs against training data</h2>{_drift(data)}
</body></html>
"""


def _window(window: dict) -> str:
    """What live quality covers: which versions, over which trips."""
    which = (
        f"The versions live now ({escape(', '.join(window['live_versions']))})"
        if window["live_versions"] is not None
        else "Every version (no stack runs)"
    )
    return (
        f"{which}, over the trips answered from {escape(_utc(window['start']))} to {escape(_utc(window['end']))} UTC"
        f" (the newest {window['max_trips']:,} labelled per version and route)"
    )


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


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
