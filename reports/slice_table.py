"""The slice report in a terminal: verdict, then the slice table worst first, from slice_metrics.json.

Reads only ML Metadata and the SliceReport's JSON, so `make report` answers in about a second.
"""

import html
import json
import os
import sys
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config
from reports import runs
from reports.output_files import write_atomically

THRESHOLD = pipeline_config.REPORTED_DECISION_THRESHOLD
COLUMNS = (
    ("auc", "AUC"),
    ("binary_accuracy", "acc"),
    ("precision", "prec"),
    ("recall", "recall"),
    ("mean_label", "label"),
    ("mean_prediction", "pred"),
    (f"fall_out@{THRESHOLD:g}", "FPR"),
    (f"miss_rate@{THRESHOLD:g}", "FNR"),
)
SLICE_WIDTH = 58


def _number(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def describe_failure(failure: dict) -> str:
    """One line: which metric on which slice, its value, the bound it missed, and the baseline's value."""
    change = (
        f", change {failure['change_vs_baseline']:+.4f}"
        if failure.get("change_vs_baseline") is not None
        else ""
    )
    if failure["metric"] == "example_count":  # a count: what the gate needs is more of them
        return f"example_count on slice {failure['slice']}: {int(failure['value'] or 0)} (needs {failure['bound']})"
    examples = f", {int(failure['examples'])} examples" if failure.get("examples") else ""
    return (
        f"{failure['metric']} on slice {failure['slice']}: {_number(failure['value'])} "
        f"(needs {failure['bound']}{change}; baseline {_number(failure['baseline_value'])}{examples})"
    )


def find_report(
    metadata_path: Path, pipeline_name: str, run_id: str | None = None
) -> tuple[str, Path | None] | None:
    """(run id, folder of its slice report or None if the run has none) for `run_id` or the newest run."""
    found = runs.find_run(metadata_path, pipeline_name, run_id)
    if found is None:
        return None
    store, run = found
    uri = runs.output_uri(store, run, pipeline_name, "SliceReport", "report")
    return run.name, Path(uri) if uri else None


def publish(report_html: Path, destination: Path, model_card: str | None = None) -> Path:
    """Copies a run's slice report to a path that stays the same between runs (whole, or not at all),
    linking the run's model card page when it has one."""
    markup = report_html.read_text()
    if model_card:
        markup = with_model_card_link(markup, os.path.relpath(model_card, destination.parent))
    write_atomically(destination, markup.encode())
    return destination


def with_model_card_link(markup: str, card_href: str) -> str:
    """The slice report with a link to the model's card under its title (`card_href` relative to the page,
    so the pair opens offline wherever the output folder is)."""
    href = html.escape(card_href, quote=True)
    link = f'<p id="model-card-link">Model card of this model: <a href="{href}">{href}</a></p>'
    return markup.replace("</h1>", "</h1>\n" + link, 1)


def read_report_data(report_dir: Path) -> dict:
    return json.loads((report_dir / folders.SLICE_METRICS_FILE).read_text())


def _cell(value) -> str:
    return f"{'n/a' if value is None else f'{value:.3f}':>7}"


def _change(row: dict) -> str:
    baseline = (row.get("baseline_metrics") or {}).get("auc")
    value = row["metrics"].get("auc")
    return f"{'' if baseline is None or value is None else f'{value - baseline:+.3f}':>7}"


def print_report(report_dir: Path, run_id: str, limit: int | None = 25, out=sys.stdout) -> None:
    data = read_report_data(report_dir)

    def say(line=""):
        print(line, file=out)

    say(f"Run {run_id}: model {'BLESSED' if data['blessed'] else 'NOT blessed'}")
    for failure in data["failures"]:
        say(f"  - {describe_failure(failure)}")
    baseline = data["baseline"]
    if baseline.get("source") == "production":
        say(f"Baseline: production model version {baseline['version']} ({baseline['path']})")
    else:
        say(f"Baseline: {baseline.get('source')}")
    slices = data["slices"]
    shown = slices if limit is None else slices[:limit]
    say()
    say(
        f"Slices, worst AUC first ({len(shown)} of {len(slices)}; '*' = fewer than "
        f"{data['min_slice_examples']} examples, listed last; FPR/FNR at threshold {THRESHOLD:g}):"
    )
    say(f"{'slice':<{SLICE_WIDTH}} {'n':>6}" + "".join(f"{h:>7}" for _, h in COLUMNS) + f"{'ΔAUC':>7}")
    for row in shown:
        name = ("* " if row["small"] else "") + row["slice"] + (" [key]" if row["is_key_slice"] else "")
        if len(name) > SLICE_WIDTH:
            name = name[: SLICE_WIDTH - 1] + "…"
        say(
            f"{name:<{SLICE_WIDTH}} {int(row['examples']):>6}"
            + "".join(_cell(row["metrics"].get(metric)) for metric, _ in COLUMNS)
            + _change(row)
        )
    if limit is not None and len(slices) > limit:
        say(f"... {len(slices) - limit} more: --all prints them, the HTML report has them all.")
