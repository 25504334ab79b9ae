"""Renders the data of `reports.evaluation_results.read_evaluation` as one self-contained HTML page.

No network, no libraries: plots are inline SVG (reports/html.py), the table's sorting is inline script.
"""

from reports.evaluation_results import DECISION_THRESHOLD, OVERALL, RATES_AT_THRESHOLDS, SCALAR_METRICS
from reports.html import (
    PALETTE,
    STYLE,
    bar_chart,
    embedded_json,
    escape,
    fmt,
    fmt_count,
    fmt_signed,
    line_chart,
)

# Headline metrics, candidate vs. baseline.
HEADLINE = ("auc", "binary_accuracy", "precision", "recall", "calibration")
MAX_BARS = 25  # per chart, largest slices first; the table lists them all


def _cell(metric: str, value) -> str:
    return fmt_count(value) if metric == "example_count" else fmt(value)


def _delta(row: dict, metric: str):
    baseline = (row.get("baseline_metrics") or {}).get(metric)
    value = row["metrics"].get(metric)
    return None if baseline is None or value is None else value - baseline


# --- page sections -------------------------------------------------------------------------------


def _verdict(content: dict) -> str:
    baseline = content["baseline"]
    if baseline.get("source") == "production":
        compared = f"the production model, version {escape(baseline['version'])} ({escape(baseline['path'])})"
    else:
        compared = "itself: nothing was in production yet, so change thresholds passed trivially"
    if content["blessed"]:
        verdict = '<p class="verdict blessed">BLESSED: the model cleared every gate and may be pushed.</p>'
    else:
        items = "".join(
            f"<li><b>{escape(f['metric'])}</b> on <b>{escape(f['slice'])}</b>: {fmt(f['value'], 4)} "
            f"(needs {escape(f['bound'])}"
            + (
                f"; change {fmt_signed(f['change_vs_baseline'])}"
                if f["change_vs_baseline"] is not None
                else ""
            )
            + f"; baseline {fmt(f['baseline_value'], 4)}; {fmt_count(f['examples'])} examples)</li>"
            for f in content["failures"]
        )
        verdict = f'<p class="verdict not-blessed">NOT BLESSED, because:</p><ul class="failures">{items}</ul>'
    reused = content.get("reused_from")
    if reused:
        compared += (
            f". The candidate is that model, byte for byte: this is its evaluation in <code>{escape(reused)}</code>, "
            "reused as a comparison of two copies (no difference on any slice)"
        )
    return f"{verdict}<p>Compared with {compared}.</p>"


def _headline(content: dict) -> str:
    by_name = {row["slice"]: row for row in content["slices"]}
    rows = []
    for name in dict.fromkeys([OVERALL, content["key_slice"]]):
        row = by_name.get(name)
        if row is None:
            continue
        for metric in HEADLINE:
            value = row["metrics"].get(metric)
            baseline = (row.get("baseline_metrics") or {}).get(metric)
            rows.append(
                f"<tr><td>{escape(name)}</td><td>{escape(SCALAR_METRICS[metric])}</td><td>{fmt(value)}</td>"
                f"<td>{fmt(baseline)}</td><td>{fmt_signed(_delta(row, metric))}</td></tr>"
            )
    return (
        '<table class="headline"><thead><tr><th>slice</th><th>metric</th><th>candidate</th><th>baseline</th>'
        f"<th>change</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _table_columns(content: dict) -> list[tuple[str, str]]:
    rates = [
        (f"{name}@{DECISION_THRESHOLD:g}", f"{heading}@{DECISION_THRESHOLD:g}")
        for name, heading in RATES_AT_THRESHOLDS.items()
    ]
    return [(name, heading) for name, heading in SCALAR_METRICS.items()] + rates


def _slice_table(content: dict) -> str:
    columns = _table_columns(content)
    head = "".join(
        f'<th data-type="number" data-key="{escape(name)}">{escape(heading)}</th>'
        for name, heading in columns
    )
    body = []
    for rank, row in enumerate(content["slices"], start=1):
        classes = ["small"] if row["small"] else []
        if row["is_key_slice"]:
            classes.append("key")
        tags = (" <span class='tag'>few examples</span>" if row["small"] else "") + (
            " <span class='tag key'>key slice</span>" if row["is_key_slice"] else ""
        )
        cells = "".join(
            f'<td data-value="{"" if row["metrics"].get(name) is None else row["metrics"][name]}">'
            f"{_cell(name, row['metrics'].get(name))}</td>"
            for name, _ in columns
        )
        auc_delta = _delta(row, "auc")
        body.append(
            f'<tr class="{" ".join(classes)}" data-slice="{escape(row["slice"])}"><td data-value="{rank}">{rank}</td>'
            f'<td data-value="{escape(row["slice"])}">{escape(row["slice"])}{tags}</td><td>{escape(row["spec"])}</td>{cells}'
            f'<td data-value="{"" if auc_delta is None else auc_delta}">{fmt_signed(auc_delta)}</td></tr>'
        )
    return (
        '<table id="slices" class="sortable"><thead><tr><th data-type="number" data-key="rank">rank</th>'
        '<th data-key="slice">slice</th><th data-key="spec">spec</th>'
        f'{head}<th data-type="number" data-key="auc_change">AUC change</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _metric_by_slice(content: dict) -> str:
    charts = []
    for spec in content["slice_specs"]:
        if spec == OVERALL:
            continue
        rows = sorted((r for r in content["slices"] if r["spec"] == spec), key=lambda r: -r["examples"])
        hidden = len(rows) - MAX_BARS
        rows = rows[:MAX_BARS]
        bars = [
            {
                "label": ", ".join(str(v) for v in r["features"].values()),
                "value": r["metrics"].get("auc"),
                "note": f"n={fmt_count(r['examples'])}" + (" (few)" if r["small"] else ""),
                "muted": r["small"],
            }
            for r in rows
        ]
        if hidden > 0:
            bars.append({"label": f"(+{hidden} smaller slices: see the table)", "value": None, "blank": True})
        charts.append(bar_chart(f"AUC by {spec}", bars, "AUC"))
    return "".join(charts)


def _model_lines(models, points_of, weights_of=None) -> list[dict]:
    """One line per model: (name, data, dashed) -> line_chart series."""
    return [
        {
            "name": model,
            "points": points_of(data),
            "weights": weights_of(data) if weights_of else None,
            "color": PALETTE[model],
            "dashed": dashed,
        }
        for model, data, dashed in models
    ]


def _curves(content: dict) -> str:
    charts = []
    for name in dict.fromkeys([OVERALL, content["key_slice"]]):
        candidate = content["curves"].get("candidate", {}).get(name)
        baseline = content["curves"].get("baseline", {}).get(name)
        if not candidate:
            continue
        models = [("candidate", candidate, False)] + ([("baseline", baseline, True)] if baseline else [])
        calibration = _model_lines(
            models,
            lambda data: [(b["mean_prediction"], b["mean_label"]) for b in data["calibration"]],
            lambda data: [b["examples"] for b in data["calibration"]],
        )
        precision_recall = _model_lines(
            models, lambda data: [(p["recall"], p["precision"]) for p in data["curve"]]
        )
        roc = _model_lines(
            models, lambda data: [(p["false_positive_rate"], p["recall"]) for p in data["curve"]]
        )
        charts += [
            line_chart(
                f"Calibration: {name}",
                calibration,
                "mean prediction (per bucket)",
                "fraction of big tippers",
                diagonal=True,
            ),
            line_chart(f"Precision / recall: {name}", precision_recall, "recall", "precision"),
            line_chart(f"ROC: {name}", roc, "false positive rate", "true positive rate", diagonal=True),
        ]
    return "".join(charts)


def _deltas(content: dict) -> str:
    if content["baseline"].get("source") != "production":
        return "<p>No production model to compare with yet.</p>"
    rows = [r for r in content["slices"] if not r["small"] and _delta(r, "auc") is not None]
    rows.sort(key=lambda r: _delta(r, "auc"))
    bars = [
        {"label": r["slice"], "value": _delta(r, "auc"), "note": f"n={fmt_count(r['examples'])}"}
        for r in rows
    ]
    return bar_chart(
        "AUC change vs. production, per slice (worst first)", bars, "AUC change", (-0.1, 0.1), signed=True
    )


SCRIPT = r"""
(function(){
  var table=document.getElementById('slices');
  var headers=table.tHead.rows[0].cells;
  function key(cell,numeric){var v=cell.getAttribute('data-value');if(v===null)v=cell.textContent;
    if(!numeric)return v.toLowerCase();return v===''?NaN:parseFloat(v);}
  Array.prototype.forEach.call(headers,function(th,index){
    th.addEventListener('click',function(){
      var numeric=th.getAttribute('data-type')==='number';
      var ascending=!th.classList.contains('sorted-asc');
      Array.prototype.forEach.call(headers,function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(ascending?'sorted-asc':'sorted-desc');
      var rows=Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function(a,b){var x=key(a.cells[index],numeric),y=key(b.cells[index],numeric);
        if(numeric){if(isNaN(x))return 1;if(isNaN(y))return -1;}
        return (x<y?-1:x>y?1:0)*(ascending?1:-1);});
      rows.forEach(function(r){table.tBodies[0].appendChild(r);});
    });
  });
  document.getElementById('filter').addEventListener('input',function(e){
    var text=e.target.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
      r.style.display=r.getAttribute('data-slice').toLowerCase().indexOf(text)>=0?'':'none';});
  });
  // A link can carry a sort: slice_report.html#sort=example_count (descending: #sort=-example_count).
  var wanted=(location.hash.match(/sort=(-?)([\w.@]+)/)||[]);
  Array.prototype.forEach.call(headers,function(th){
    if(th.getAttribute('data-key')===wanted[2]){th.click();if(wanted[1]==='-')th.click();}
  });
  table.setAttribute('data-ready','true');
})();
"""


def render(content: dict) -> str:
    """The whole page as a string."""
    small = sum(1 for r in content["slices"] if r["small"])
    title = "Slice report: " + ("blessed" if content["blessed"] else "NOT blessed")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p>Evaluation: <code>{escape(content["evaluation_uri"])}</code></p>
<section id="verdict">{_verdict(content)}</section>
<h2>Headline: candidate vs. baseline</h2>
<section id="headline">{_headline(content)}</section>
<h2>Every slice, worst first</h2>
<p>{len(content["slices"])} slices from {len(content["slice_specs"])} slicing specs ({escape(", ".join(content["slice_specs"]))}).
Sorted by AUC, lowest first, among slices with at least {content["min_slice_examples"]} examples; the {small}
slices with fewer are greyed out and listed last: their metrics are too noisy to act on. AUC is n/a on a
slice whose trips are all big tippers or all not. FPR and FNR (false positive and false negative rates, as
in Fairness Indicators) are at decision threshold {DECISION_THRESHOLD:g}. Click a heading to sort (or link to <code>#sort=-example_count</code>).</p>
<input id="filter" type="search" placeholder="Filter slices, e.g. payment_type=Credit Card">
{_slice_table(content)}
<h2>Calibration and curves: overall and the key slice</h2>
<div class="plots" id="curves">{_curves(content)}</div>
<h2>Candidate vs. production per slice</h2>
<div class="plots" id="deltas">{_deltas(content)}</div>
<h2>AUC by slice</h2>
<div class="plots" id="by-slice">{_metric_by_slice(content)}</div>
<script type="application/json" id="report-data">{embedded_json({"failures": content["failures"]})}</script>
<script>{SCRIPT}</script>
</body></html>
"""
