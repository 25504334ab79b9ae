"""`taxi-pipeline drift`: every feature's span-to-span drift and serving skew, printed and as a page."""

import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags, holding_output_folder
from config import folders


@holding_output_folder
def _drift(args) -> int:
    from inputs import checks, layout

    settings = folders.Settings.resolve(
        args.output_dir, args.data_root, args.schema, args.serving_logs, args.serving_logs_hours
    )
    try:
        layout.prepare(settings)
    except checks.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    from reports import drift, drift_report_html

    spans = checks.discover_spans(settings.checked_spans_dir)
    schema = drift.read_schema(settings.schema_path)
    comparisons = drift.comparisons(settings, spans)
    table = drift.drift_table(schema, comparisons)
    print(
        "Distances between consecutive spans (drift) and serving logs vs. the training window (skew),\n"
        "L-infinity for categorical features, Jensen-Shannon divergence for numeric ones; thresholds from "
        f"{settings.schema_path} ('-': not gated), '*' = above its threshold.\n"
    )
    print(drift.format_table(table))
    table_path = settings.drift_dir / folders.DRIFT_TABLE_FILE
    drift.write_table(table, table_path)
    settings.drift_report_path.write_text(drift_report_html.render(table, comparisons, schema, args.top))
    print(f"\nTable: {table_path}\nHTML page: {settings.drift_report_path}")
    return 0


def register(commands) -> None:
    drift = commands.add_parser(
        "drift",
        help="Print every feature's drift between consecutive spans and serving-vs-training skew; write the HTML page.",
    )
    add_folder_flags(drift)
    drift.add_argument("--data-root", help="As for `run`.")
    drift.add_argument("--serving-logs", help="As for `run`.")
    drift.add_argument("--serving-logs-hours", type=float, help="As for `run`.")
    drift.add_argument("--schema", help="As for `run`: its comparators set the thresholds shown.")
    drift.add_argument("--top", type=int, default=6, help="Plot the N most drifted features (default 6).")
    drift.set_defaults(handler=_drift)
