"""Renders the data of `pipeline.evaluation_results.read_evaluation` as one self-contained HTML page.

No network, no libraries: plots are inline SVG drawn here, styles and the table's sorting are inline.
"""

import html
import json

from pipeline.evaluation_results import DECISION_THRESHOLD, OVERALL, RATES_AT_THRESHOLDS, SCALAR_METRICS

# Headline metrics, candidate vs. baseline.
HEADLINE = ("auc", "binary_accuracy", "precision", "recall", "calibration")
MAX_BARS = 25  # per chart, largest slices first; the table lists them all
PALETTE = {"candidate": "#1f6feb", "baseline": "#8b949e", "bad": "#cf222e", "small": "#d0d7de"}


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _count(value) -> str:
    return "n/a" if value is None else f"{int(value):,}"


def _cell(metric: str, value) -> str:
    return _count(value) if metric == "example_count" else _fmt(value)


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _short(label: str, limit: int = 56) -> str:
    """A label that fits a chart's label column; the full text stays in the element's tooltip."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _delta(row: dict, metric: str):
    baseline = (row.get("baseline_metrics") or {}).get(metric)
    value = row["metrics"].get(metric)
    return None if baseline is None or value is None else value - baseline


# --- SVG plots ---------------------------------------------------------------------------------


def bar_chart(title: str, bars: list[dict], value_label: str, domain=(0.0, 1.0), signed: bool = False) -> str:
    """Horizontal bars: each {'label', 'value', 'note', 'muted'}; a None value draws no bar, only 'n/a'."""
    label_width, plot_width, row_height = 380, 360, 18
    height = 34 + row_height * len(bars)
    low, high = domain
    scale = plot_width / (high - low)
    zero_x = label_width + (0.0 - low) * scale if signed else label_width
    parts = [
        f'<svg class="plot bar-chart" role="img" aria-label="{_e(title)}" width="{label_width + plot_width + 140}" '
        f'height="{height}" viewBox="0 0 {label_width + plot_width + 140} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" class="plot-title">{_e(title)}</text>',
        f'<text x="{label_width}" y="28" class="axis">{low:g}</text>',
        f'<text x="{label_width + plot_width}" y="28" class="axis" text-anchor="end">{high:g} {_e(value_label)}</text>',
    ]
    for index, bar in enumerate(bars):
        y = 34 + index * row_height
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" class="label">{_e(bar["label"])}</text>'
        )
        value = bar["value"]
        if value is not None:
            clipped = min(max(value, low), high)
            x_end = label_width + (clipped - low) * scale
            x, width = (min(zero_x, x_end), abs(x_end - zero_x))
            color = (
                PALETTE["small"]
                if bar.get("muted")
                else (PALETTE["bad"] if signed and value < 0 else PALETTE["candidate"])
            )
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{max(width, 1):.1f}" height="{row_height - 6}" fill="{color}">'
                f"<title>{_e(bar['label'])}: {_e(_signed(value) if signed else _fmt(value))}</title></rect>"
            )
        text = (
            ""
            if bar.get("blank")
            else (_signed(value) if signed else _fmt(value)) + (f"  {bar['note']}" if bar.get("note") else "")
        )
        parts.append(f'<text x="{label_width + plot_width + 6}" y="{y + 13}" class="value">{_e(text)}</text>')
    if signed:
        parts.append(f'<line x1="{zero_x:.1f}" y1="30" x2="{zero_x:.1f}" y2="{height}" class="zero"/>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: list[dict], x_label: str, y_label: str, diagonal: bool = False) -> str:
    """Lines on [0, 1] x [0, 1]: each series {'name', 'points': [(x, y)], 'color', 'dashed'}, and
    optionally 'weights' (one per point): then each point is also a dot of area proportional to it."""
    size, margin = 260, 40
    parts = [
        f'<svg class="plot line-chart" role="img" aria-label="{_e(title)}" width="{size + 2 * margin + 120}" '
        f'height="{size + 2 * margin}" viewBox="0 0 {size + 2 * margin + 120} {size + 2 * margin}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{margin}" y="16" class="plot-title">{_e(title)}</text>',
        f'<rect x="{margin}" y="{margin}" width="{size}" height="{size}" class="frame"/>',
        f'<text x="{margin + size / 2}" y="{size + margin + 30}" text-anchor="middle" class="axis">{_e(x_label)}</text>',
        f'<text x="12" y="{margin + size / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 12 {margin + size / 2})">{_e(y_label)}</text>',
        f'<text x="{margin}" y="{size + margin + 14}" class="axis">0</text>',
        f'<text x="{margin + size}" y="{size + margin + 14}" class="axis" text-anchor="end">1</text>',
    ]
    if diagonal:
        parts.append(
            f'<line x1="{margin}" y1="{margin + size}" x2="{margin + size}" y2="{margin}" class="diagonal"/>'
        )
    for index, line in enumerate(series):
        points = [
            f"{margin + x * size:.1f},{margin + (1 - y) * size:.1f}"
            for x, y in line["points"]
            if x is not None and y is not None
        ]
        if not points:
            continue
        dash = ' stroke-dasharray="5 4"' if line.get("dashed") else ""
        parts.append(
            f'<polyline class="series" points="{" ".join(points)}" fill="none" stroke="{line["color"]}" stroke-width="2"{dash}/>'
        )
        weights = line.get("weights")
        if weights:
            largest = max(weights) or 1.0
            for (x, y), weight in zip(line["points"], weights, strict=True):
                if x is not None and y is not None:
                    parts.append(
                        f'<circle class="point" cx="{margin + x * size:.1f}" cy="{margin + (1 - y) * size:.1f}" '
                        f'r="{2 + 8 * (weight / largest) ** 0.5:.1f}" fill="{line["color"]}" fill-opacity="0.35">'
                        f"<title>{_e(line['name'])}: mean prediction {x:.3f}, observed {y:.3f}, {int(weight):,} examples</title></circle>"
                    )
        parts.append(
            f'<text x="{size + margin + 10}" y="{margin + 14 + 16 * index}" fill="{line["color"]}" class="legend">{_e(line["name"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- page sections -------------------------------------------------------------------------------


def _verdict(content: dict) -> str:
    baseline = content["baseline"]
    if baseline.get("source") == "production":
        compared = f"the production model, version {_e(baseline['version'])} ({_e(baseline['path'])})"
    else:
        compared = "itself: nothing was in production yet, so change thresholds passed trivially"
    if content["blessed"]:
        verdict = '<p class="verdict blessed">BLESSED: the model cleared every gate and may be pushed.</p>'
    else:
        items = "".join(
            f"<li><b>{_e(f['metric'])}</b> on <b>{_e(f['slice'])}</b>: {_fmt(f['value'], 4)} "
            f"(needs {_e(f['bound'])}"
            + (f"; change {_signed(f['change_vs_baseline'])}" if f["change_vs_baseline"] is not None else "")
            + f"; baseline {_fmt(f['baseline_value'], 4)}; {_count(f['examples'])} examples)</li>"
            for f in content["failures"]
        )
        verdict = f'<p class="verdict not-blessed">NOT BLESSED, because:</p><ul class="failures">{items}</ul>'
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
                f"<tr><td>{_e(name)}</td><td>{_e(SCALAR_METRICS[metric])}</td><td>{_fmt(value)}</td>"
                f"<td>{_fmt(baseline)}</td><td>{_signed(_delta(row, metric))}</td></tr>"
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
        f'<th data-type="number" data-key="{_e(name)}">{_e(heading)}</th>' for name, heading in columns
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
            f'<tr class="{" ".join(classes)}" data-slice="{_e(row["slice"])}"><td data-value="{rank}">{rank}</td>'
            f'<td data-value="{_e(row["slice"])}">{_e(row["slice"])}{tags}</td><td>{_e(row["spec"])}</td>{cells}'
            f'<td data-value="{"" if auc_delta is None else auc_delta}">{_signed(auc_delta)}</td></tr>'
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
                "note": f"n={_count(r['examples'])}" + (" (few)" if r["small"] else ""),
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
        {"label": r["slice"], "value": _delta(r, "auc"), "note": f"n={_count(r['examples'])}"} for r in rows
    ]
    return bar_chart(
        "AUC change vs. production, per slice (worst first)", bars, "AUC change", (-0.1, 0.1), signed=True
    )


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328;max-width:1400px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
.verdict{font-weight:700;font-size:16px;padding:8px 12px;border-radius:6px;display:inline-block}
.blessed{background:#dafbe1;color:#116329}.not-blessed{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th:nth-child(2),td:nth-child(2),th:nth-child(3),td:nth-child(3){text-align:left}
.headline td:first-child,.headline th:first-child{text-align:left}
table.sortable th{cursor:pointer;background:#f6f8fa;position:sticky;top:0}
th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
tr.small td{color:#8c959f}tr.key td{background:#fff8c5}
.tag{font-size:11px;border:1px solid #d0d7de;border-radius:8px;padding:0 5px;color:#57606a}
.plot{margin:8px 16px 8px 0;vertical-align:top}.plots{display:flex;flex-wrap:wrap}
.plot-title{font-weight:600;font-size:13px}.axis,.value,.label,.legend{font-size:11px}
.frame{fill:none;stroke:#d0d7de}.diagonal,.zero{stroke:#afb8c1;stroke-dasharray:3 3}
#filter{margin:6px 0;padding:4px;width:320px}
"""

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


def _embedded_json(data) -> str:
    """JSON safe inside a <script> element (no '</script>' can end it early)."""
    return json.dumps(data).replace("</", "<\\/")


def render(content: dict) -> str:
    """The whole page as a string."""
    small = sum(1 for r in content["slices"] if r["small"])
    title = "Slice report: " + ("blessed" if content["blessed"] else "NOT blessed")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<p>Evaluation: <code>{_e(content["evaluation_uri"])}</code></p>
<section id="verdict">{_verdict(content)}</section>
<h2>Headline: candidate vs. baseline</h2>
<section id="headline">{_headline(content)}</section>
<h2>Every slice, worst first</h2>
<p>{len(content["slices"])} slices from {len(content["slice_specs"])} slicing specs ({_e(", ".join(content["slice_specs"]))}).
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
<script type="application/json" id="report-data">{_embedded_json({"failures": content["failures"]})}</script>
<script>{SCRIPT}</script>
</body></html>
"""
