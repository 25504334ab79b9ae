"""What the self-contained HTML pages share: styles, number formats, escaping and inline SVG charts.

No network, no libraries: every page (slice report, drift page) is one file with inline styles and SVG.
"""

import html
import json

PALETTE = {"candidate": "#1f6feb", "baseline": "#8b949e", "bad": "#cf222e", "small": "#d0d7de"}


def fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_count(value) -> str:
    return "n/a" if value is None else f"{int(value):,}"


def fmt_signed(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def escape(text) -> str:
    return html.escape(str(text), quote=True)


# --- SVG plots ---------------------------------------------------------------------------------


def bar_chart(title: str, bars: list[dict], value_label: str, domain=(0.0, 1.0), signed: bool = False) -> str:
    """Horizontal bars: each {'label', 'value', 'note', 'muted'}; a None value draws no bar, only 'n/a'."""
    label_width, plot_width, row_height = 380, 360, 18
    height = 34 + row_height * len(bars)
    low, high = domain
    scale = plot_width / (high - low)
    zero_x = label_width + (0.0 - low) * scale if signed else label_width
    parts = [
        f'<svg class="plot bar-chart" role="img" aria-label="{escape(title)}" width="{label_width + plot_width + 140}" '
        f'height="{height}" viewBox="0 0 {label_width + plot_width + 140} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" class="plot-title">{escape(title)}</text>',
        f'<text x="{label_width}" y="28" class="axis">{low:g}</text>',
        f'<text x="{label_width + plot_width}" y="28" class="axis" text-anchor="end">{high:g} {escape(value_label)}</text>',
    ]
    for index, bar in enumerate(bars):
        y = 34 + index * row_height
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" class="label">{escape(bar["label"])}</text>'
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
                f"<title>{escape(bar['label'])}: {escape(fmt_signed(value) if signed else fmt(value))}</title></rect>"
            )
        text = (
            ""
            if bar.get("blank")
            else (fmt_signed(value) if signed else fmt(value))
            + (f"  {bar['note']}" if bar.get("note") else "")
        )
        parts.append(
            f'<text x="{label_width + plot_width + 6}" y="{y + 13}" class="value">{escape(text)}</text>'
        )
    if signed:
        parts.append(f'<line x1="{zero_x:.1f}" y1="30" x2="{zero_x:.1f}" y2="{height}" class="zero"/>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: list[dict], x_label: str, y_label: str, diagonal: bool = False) -> str:
    """Lines on [0, 1] x [0, 1]: each series {'name', 'points': [(x, y)], 'color', 'dashed'}, and
    optionally 'weights' (one per point): then each point is also a dot of area proportional to it."""
    size, margin = 260, 40
    parts = [
        f'<svg class="plot line-chart" role="img" aria-label="{escape(title)}" width="{size + 2 * margin + 120}" '
        f'height="{size + 2 * margin}" viewBox="0 0 {size + 2 * margin + 120} {size + 2 * margin}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{margin}" y="16" class="plot-title">{escape(title)}</text>',
        f'<rect x="{margin}" y="{margin}" width="{size}" height="{size}" class="frame"/>',
        f'<text x="{margin + size / 2}" y="{size + margin + 30}" text-anchor="middle" class="axis">{escape(x_label)}</text>',
        f'<text x="12" y="{margin + size / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 12 {margin + size / 2})">{escape(y_label)}</text>',
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
                        f"<title>{escape(line['name'])}: mean prediction {x:.3f}, observed {y:.3f}, {int(weight):,} examples</title></circle>"
                    )
        parts.append(
            f'<text x="{size + margin + 10}" y="{margin + 14 + 16 * index}" fill="{line["color"]}" class="legend">{escape(line["name"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


SERIES_COLORS = ("#1f6feb", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bc4c00", "#57606a", "#0969da")


def time_series_chart(title: str, series: list[dict], y_label: str, start: float, end: float,
                      y_range: tuple[float, float] | None = None) -> str:  # fmt: skip
    """Lines over time: each series {'name', 'points': [(unix time, value)]}; x from `start` to `end`,
    y over `y_range` or the values' own range (from 0). No points at all: the chart says so."""
    width, height, margin = 420, 150, 44
    values = [v for line in series for _, v in line["points"] if v is not None]
    low, high = y_range or (min([0.0, *values]), max(values, default=1.0) or 1.0)
    high = high if high > low else low + 1.0
    span = max(end - start, 1e-9)
    parts = [
        f'<svg class="plot time-series" role="img" aria-label="{escape(title)}" width="{width + margin + 170}" '
        f'height="{height + 2 * margin}" viewBox="0 0 {width + margin + 170} {height + 2 * margin}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{margin}" y="16" class="plot-title">{escape(title)}</text>',
        f'<rect x="{margin}" y="{margin}" width="{width}" height="{height}" class="frame"/>',
        f'<text x="{margin - 4}" y="{margin + 4}" text-anchor="end" class="axis">{high:.3g}</text>',
        f'<text x="{margin - 4}" y="{margin + height}" text-anchor="end" class="axis">{low:.3g}</text>',
        f'<text x="{margin}" y="{margin + height + 14}" class="axis">-{span / 60:.0f} min</text>',
        f'<text x="{margin + width}" y="{margin + height + 14}" text-anchor="end" class="axis">now</text>',
        f'<text x="{margin + width / 2}" y="{margin + height + 28}" text-anchor="middle" class="axis">{escape(y_label)}</text>',
    ]
    if not values:
        parts.append(
            f'<text x="{margin + width / 2}" y="{margin + height / 2}" text-anchor="middle" class="label">no data in this window</text>'
        )
    for index, line in enumerate(series):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        points = [
            f"{margin + (t - start) / span * width:.1f},{margin + (1 - (min(max(v, low), high) - low) / (high - low)) * height:.1f}"
            for t, v in line["points"]
            if v is not None
        ]
        if points:
            parts.append(
                f'<polyline class="series" points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{margin + width + 8}" y="{margin + 10 + 14 * index}" fill="{color}" class="legend">{escape(line["name"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


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


def embedded_json(data) -> str:
    """JSON safe inside a <script> element (no '</script>' can end it early)."""
    return json.dumps(data).replace("</", "<\\/")
