"""Renders a model card's facts (reports/model_card.py `gather`) as one self-contained HTML page.

No network, no script: styles inline (reports/html.py), the fairness rates as a table and inline SVG bars.
"""

from reports.html import STYLE, bar_chart, escape, fmt, fmt_count, fmt_signed
from reports.model_card import FROM_PRODUCTION

SECTIONS = (
    ("intended-use", "Intended use"),
    ("data", "Training and evaluation data"),
    ("metrics", "Metrics against production"),
    ("fairness", "Fairness: error rates per slice"),
    ("validation", "Validation"),
    ("tuning", "Tuning"),
    ("limits", "Known limits"),
    ("lineage", "Lineage"),
)
CARD_STYLE = """
section{margin-bottom:12px}td.text,th.text{text-align:left;white-space:normal}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{font-weight:600}dd{margin:0}
tr.few td{color:#8c959f}tr.key td{background:#fff8c5}
"""


def _list(items) -> str:
    return (
        "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>" if items else "<p>None.</p>"
    )


def _intended_use(facts: dict) -> str:
    use = facts["intended_use"]
    return (
        f"<p>{escape(use['overview'])}</p><h3>Users</h3>{_list(use['users'])}<h3>Uses</h3>{_list(use['uses'])}"
        f"<h3>The label</h3><p>{escape(facts['label'])}</p>"
    )


def _data(facts: dict) -> str:
    rows = []
    for role in ("training", "evaluation"):
        window = facts["data"][role]
        judged = window.get("examples_judged")
        per_half_year = ", ".join(f"{h}: {fmt_count(n)}" for h, n in window["rows_per_half_year"].items())
        rows.append(
            f'<tr data-window="{role}"><td class="text">{role}</td><td class="text">{escape(window["split"])}</td>'
            f'<td class="text">{escape(window["half_years"][0])} to {escape(window["half_years"][-1])}</td>'
            f"<td>{fmt_count(window['rows'])}</td><td>{fmt_count(judged) if judged is not None else ''}</td>"
            f'<td class="text">{escape(per_half_year)}</td></tr>'
        )
    return (
        f"<p>Span {escape(facts['data']['span'])}: each window is a range of half-years.</p>"
        '<table id="windows"><thead><tr><th class="text">window</th><th class="text">split</th>'
        '<th class="text">half-years</th><th>rows</th><th>judged by the Evaluator</th><th class="text">rows per half-year</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _metrics(facts: dict) -> str:
    metrics = facts["metrics"]
    baseline = metrics["baseline"]
    compared = (
        f"Compared with production version {escape(baseline['version'])}, on the same evaluation examples."
        if baseline.get("source") == FROM_PRODUCTION
        else "Nothing was in production when this model was evaluated: there is no production to compare with."
    )
    rows = [
        f'<tr><td class="text">{escape(metrics[part]["slice"])}</td><td class="text">{escape(row["heading"])}</td>'
        f"<td>{fmt(row['candidate'])}</td><td>{fmt(row['production'])}</td><td>{fmt_signed(row['change'])}</td></tr>"
        for part in ("overall", "key_slice")
        for row in metrics[part]["rows"]
    ]
    return (
        f"<p>{compared}</p>"
        '<table id="headline"><thead><tr><th class="text">slice</th><th class="text">metric</th><th>this model</th>'
        f"<th>production</th><th>change</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _fairness(facts: dict) -> str:
    fairness = facts["fairness"]
    threshold = f"{fairness['threshold']:g}"
    body = []
    for row in fairness["slices"]:
        classes = " ".join(c for c, on in (("few", row["few_examples"]), ("key", row["is_key_slice"])) if on)
        body.append(
            f'<tr class="{classes}" data-slice="{escape(row["slice"])}"><td class="text">{escape(row["slice"])}</td>'
            f"<td>{fmt_count(row['examples'])}</td><td>{fmt(row['false_positive_rate'])}</td>"
            f"<td>{fmt(row['false_negative_rate'])}</td><td>{fmt(row['production_false_positive_rate'])}</td>"
            f"<td>{fmt(row['production_false_negative_rate'])}</td></tr>"
        )
    bars = [
        {
            "label": row["slice"],
            "value": row["false_negative_rate"],
            "note": f"n={fmt_count(row['examples'])}",
            "muted": row["few_examples"],
        }
        for row in fairness["slices"]
        if not row["few_examples"]
    ]
    return (
        f"<p>False positive rate (FPR: small tippers flagged as big) and false negative rate (FNR: big tippers "
        f"missed) at the decision threshold {threshold}, from TFMA's results; grey rows have fewer than "
        f"{fairness['min_slice_examples']} examples.</p>"
        f'<table id="fairness"><thead><tr><th class="text">slice</th><th>examples</th><th>FPR@{threshold}</th>'
        f"<th>FNR@{threshold}</th><th>production FPR</th><th>production FNR</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
        + bar_chart(f"False negative rate @{threshold}, slices with enough examples", bars, "FNR")
    )


def _validation(facts: dict) -> str:
    validation = facts["validation"]
    evaluator = validation["evaluator"]
    verdict = "blessed" if evaluator["blessed"] else "NOT blessed"
    failures = _list(
        f"{f['metric']} on {f['slice']}: {fmt(f['value'], 4)} (needs {f['bound']})"
        for f in evaluator["failures"]
    )
    check = validation["serving_check"] or {}
    if check.get("passed"):
        served = (
            f"passed: loaded in {fmt(check.get('load_seconds'), 1)} s, {fmt_count(check.get('trips'))} held-out trips "
            f"answered as the model does, p99 {fmt(check.get('p99_seconds'))} s, peak memory "
            f"{fmt(check.get('peak_memory_mb'), 0)} MB"
        )
    else:
        served = f"FAILED: {check.get('not_blessed_because') or 'no serving check recorded'}"
    anomalies = validation["data"]["anomalies"]
    return (
        f'<dl id="verdicts"><dt>Evaluator</dt><dd>{verdict}</dd>'
        f"<dt>ExampleValidator</dt><dd>{len(anomalies)} anomalies</dd>"
        f"<dt>Serving check (InfraBlessing)</dt><dd>{escape(served)}</dd></dl>"
        + ("<h3>Why not blessed</h3>" + failures if evaluator["failures"] else "")
        + ("<h3>Data anomalies</h3>" + _list(anomalies) if anomalies else "")
    )


def _tuning(facts: dict) -> str:
    tuning = facts["tuning"]
    rows = "".join(
        f'<tr><td class="text">{escape(name)}</td><td>{escape(value)}</td></tr>'
        for name, value in sorted(tuning["hyperparameters"].items())
    )
    return (
        f'<p id="tuning-summary">{escape(tuning["summary"])}</p><table id="hyperparameters"><thead><tr>'
        f'<th class="text">hyperparameter</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _lineage(facts: dict) -> str:
    lineage, model = facts["lineage"], facts["model"]
    items = [
        ("data span", lineage["span"]),
        ("schema version", lineage["schema_version"]),
        *(
            (f"code fingerprint ({name})", value)
            for name, value in sorted(lineage["code_fingerprints"].items())
        ),
        ("pushed version", model["version"] or f"not pushed: {model['not_pushed_because']}"),
        ("pushed to", model["path"] or "n/a"),
        ("evaluation", lineage["evaluation"]),
        ("slice report", lineage["slice_report"]),
    ]
    return (
        '<dl id="lineage-items">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
        + "</dl>"
    )


RENDERERS = {
    "intended-use": _intended_use,
    "data": _data,
    "metrics": _metrics,
    "fairness": _fairness,
    "validation": _validation,
    "tuning": _tuning,
    "limits": lambda facts: _list(facts["limits"]),
    "lineage": _lineage,
}


def render(facts: dict) -> str:
    """The whole page as a string."""
    model = facts["model"]
    title = f"Model card: {model['name']}, " + (
        f"version {model['version']}" if model["pushed"] else "not pushed"
    )
    sections = "".join(
        f'<section id="{anchor}"><h2>{escape(heading)}</h2>{RENDERERS[anchor](facts)}</section>'
        for anchor, heading in SECTIONS
    )
    contents = " · ".join(f'<a href="#{anchor}">{escape(heading)}</a>' for anchor, heading in SECTIONS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}{CARD_STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<nav>{contents}</nav>
{sections}
<p>The same card as the Model Card Toolkit's JSON (schema v0.0.2): <code>model_card.json</code> beside this page.</p>
</body></html>
"""
