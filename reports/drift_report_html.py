"""The drift page: every feature's distances as a table, and the distributions of the most drifted ones.

Self-contained like the slice report: inline SVG and styles, no network. Distributions come from the
same statistics the distances were computed on (50-bucket histograms, top values).
"""

from reports.drift import SKEW, Comparison, closeness
from reports.html import STYLE, escape

COLORS = {"reference": "#8b949e", "current": "#1f6feb"}
MAX_CATEGORIES = 12
PLOT_WIDTH, PLOT_HEIGHT = 420, 180


def _feature_stats(stats, feature: str):
    for candidate in stats.datasets[0].features if stats.datasets else []:
        if ".".join(candidate.path.step) == feature or candidate.name == feature:
            return candidate
    return None


def _standard_histogram(feature_stats):
    for histogram in feature_stats.num_stats.histograms:
        if histogram.type == histogram.STANDARD:
            return histogram
    return None


def _plot_range(feature_stats) -> tuple[float, float] | None:
    """The central range of a feature: its 10th-90th percentiles (TFDV's equal-mass histogram), widened
    by half that span each side and kept within min-max, so one far outlier does not flatten the plot."""
    for histogram in feature_stats.num_stats.histograms:
        if histogram.type == histogram.QUANTILES and len(histogram.buckets) >= 3:
            low, high = histogram.buckets[1].low_value, histogram.buckets[-1].low_value
            margin = (high - low) * 0.5
            return max(low - margin, feature_stats.num_stats.min), min(
                high + margin, feature_stats.num_stats.max
            )
    return None


def numeric_plot(title: str, series: list[tuple[str, str, object]]) -> str:
    """Density step lines of each (name, color, feature statistics) on one axis, over their central range."""
    ranges = [r for _, _, s in series if (r := _plot_range(s)) is not None]
    if not ranges:
        return ""
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if high <= low:
        return ""
    lines, peak = [], 0.0
    for name, color, stats in series:
        histogram = _standard_histogram(stats)
        total = sum(b.sample_count for b in histogram.buckets) if histogram else 0
        if not total:
            continue
        points = []
        for bucket in histogram.buckets:
            width = max(bucket.high_value - bucket.low_value, 1e-12)
            density = bucket.sample_count / total / width
            start, end = max(bucket.low_value, low), min(bucket.high_value, high)
            if end > start:
                points += [(start, density), (end, density)]
                peak = max(peak, density)
        lines.append((name, color, points))
    if not peak:
        return ""
    margin = 30

    def x(value):
        return margin + (value - low) / (high - low) * PLOT_WIDTH

    def y(value):
        return margin + PLOT_HEIGHT - value / peak * PLOT_HEIGHT

    parts = [
        f'<svg class="plot distribution" role="img" aria-label="{escape(title)}" width="{PLOT_WIDTH + 2 * margin + 150}" '
        f'height="{PLOT_HEIGHT + 2 * margin + 10}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{margin}" y="16" class="plot-title">{escape(title)}</text>',
        f'<rect x="{margin}" y="{margin}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" class="frame"/>',
        f'<text x="{margin}" y="{PLOT_HEIGHT + margin + 14}" class="axis">{low:.4g}</text>',
        f'<text x="{margin + PLOT_WIDTH}" y="{PLOT_HEIGHT + margin + 14}" class="axis" text-anchor="end">{high:.4g}</text>',
    ]
    for index, (name, color, points) in enumerate(lines):
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
        parts.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        parts.append(
            f'<text x="{PLOT_WIDTH + margin + 10}" y="{margin + 14 + 16 * index}" fill="{color}" class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _frequencies(feature_stats) -> dict[str, float]:
    string_stats = feature_stats.string_stats
    total = sum(v.frequency for v in string_stats.top_values) or 1.0
    counted = string_stats.common_stats.num_non_missing or total
    return {v.value: v.frequency / counted for v in string_stats.top_values}


def categorical_plot(title: str, series: list[tuple[str, str, object]]) -> str:
    """Paired horizontal bars: each value's share of examples in each series, largest values first."""
    shares = [(name, color, _frequencies(stats)) for name, color, stats in series]
    values = sorted(
        {v for _, _, f in shares for v in f}, key=lambda v: -max(f.get(v, 0) for _, _, f in shares)
    )
    values = values[:MAX_CATEGORIES]
    label_width, bar_width, row = 170, 300, 12
    height = 40 + row * len(shares) * len(values) + 6 * len(values)
    parts = [
        f'<svg class="plot distribution" role="img" aria-label="{escape(title)}" width="{label_width + bar_width + 200}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="16" class="plot-title">{escape(title)}</text>',
    ]
    top = 30
    for value in values:
        parts.append(
            f'<text x="{label_width - 6}" y="{top + row}" text-anchor="end" class="label">{escape(value[:28])}</text>'
        )
        for name, color, frequencies in shares:
            share = frequencies.get(value, 0.0)
            parts.append(
                f'<rect class="bar" x="{label_width}" y="{top}" width="{share * bar_width:.1f}" height="{row - 2}" fill="{color}">'
                f"<title>{escape(name)}: {escape(value)} {share:.1%}</title></rect>"
                f'<text x="{label_width + share * bar_width + 4}" y="{top + row - 3}" class="value">{share:.1%}</text>'
            )
            top += row
        top += 6
    for index, (name, color, _) in enumerate(shares):
        parts.append(
            f'<text x="{label_width + bar_width + 60}" y="{30 + 14 * index}" fill="{color}" class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _cell(cell: dict | None) -> str:
    if cell is None:
        return "<td>-</td>"
    threshold = cell["threshold"]
    css = "above" if cell["above"] else "near" if threshold and cell["value"] > 0.75 * threshold else ""
    return f'<td class="{css}" data-value="{cell["value"]}" title="{escape(cell["measure"])}">{cell["value"]:.3f}</td>'


def _table(table: dict) -> str:
    names = [c["name"] for c in table["comparisons"]]
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for row in table["features"]:
        thresholds = "".join(
            f"<td>{'-' if row[k] is None else f'{row[k]:.2f}'}</td>"
            for k in ("drift_threshold", "skew_threshold")
        )
        cells = "".join(_cell(row["cells"].get(n)) for n in names)
        rows.append(
            f'<tr data-feature="{escape(row["feature"])}"><td>{escape(row["feature"])}</td>{thresholds}{cells}</tr>'
        )
    counts = "".join(f"<td>{table['examples'][n][0]:,} → {table['examples'][n][1]:,}</td>" for n in names)
    return (
        f'<table id="drift"><thead><tr><th>feature</th><th>drift threshold</th><th>skew threshold</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody><tfoot><tr><td>examples</td><td></td><td></td>{counts}</tr></tfoot></table>"
    )


def _worst_comparison(row: dict) -> str:
    return max(row["cells"].items(), key=lambda item: closeness(item[1]))[0]


def _distributions(table: dict, comparisons: list[Comparison], schema, top: int) -> str:
    by_name = {c.name: c for c in comparisons}
    gated = [
        r for r in table["features"] if r["drift_threshold"] is not None or r["skew_threshold"] is not None
    ]
    plots = []
    for row in gated[:top]:
        comparison = by_name[_worst_comparison(row)]
        cell = row["cells"][comparison.name]
        series = []
        for label, role, stats in (
            (comparison.reference_label, "reference", comparison.reference),
            (comparison.current_label, "current", comparison.current),
        ):
            feature_stats = _feature_stats(stats, row["feature"])
            if feature_stats is not None:
                series.append((label, COLORS[role], feature_stats))
        title = (
            f"{row['feature']}: {comparison.kind} {comparison.name}, {cell['measure']} {cell['value']:.3f}"
            + (f" (threshold {cell['threshold']:.2f})" if cell["threshold"] else "")
        )
        categorical = bool(series) and series[0][2].HasField("string_stats")
        plot = categorical_plot(title, series) if categorical else numeric_plot(title, series)
        if plot:
            plots.append(f'<div class="feature-plot" data-feature="{escape(row["feature"])}">{plot}</div>')
    return "".join(plots)


EXTRA_STYLE = "#drift td:first-child,#drift th:first-child{text-align:left}td.above{background:#ffebe9;color:#a40e26;font-weight:700}td.near{background:#fff8c5}"


def render(table: dict, comparisons: list[Comparison], schema, top: int) -> str:
    skew = [c for c in comparisons if c.kind == SKEW]
    above = sum(1 for r in table["features"] for c in r["cells"].values() if c["above"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}{EXTRA_STYLE}</style></head>
<body>
<h1>Drift report</h1>
<p>Distances between each span and the one before it (drift){" and between the serving logs and the newest span's training window (skew)" if skew else ""}:
L-infinity for categorical features, Jensen-Shannon divergence for numeric ones, as the pipeline's ExampleValidator
computes them. Thresholds are the curated schema's comparators; a feature without one is measured but never gates.
<b>{above}</b> distance(s) above a threshold (red); amber is above three quarters of it.</p>
<h2>Every feature, worst first</h2>
{_table(table)}
<h2>Distributions of the most drifted features</h2>
<p>Each against the comparison where it came closest to (or furthest past) its threshold; numeric features
as densities over their central range (10th-90th percentile, widened by half), categorical ones as shares of examples.</p>
<div class="plots" id="distributions">{_distributions(table, comparisons, schema, top)}</div>
</body></html>
"""
