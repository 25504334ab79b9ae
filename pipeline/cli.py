"""`taxi-pipeline`: prepare the data, run the pipeline locally, reprint a run's summary or slice report."""

import argparse
import sys
import time
import traceback
from pathlib import Path

from pipeline import configs
from pipeline.quiet_logs import quiet_logs

# Exit codes: 0 the run completed (blessed and pushed, or not, or push held), 1 a component failed,
# 2 bad input or arguments, 3 data validation stopped the run before training.
DATA_REJECTED_EXIT_CODE = 3


def _add_folder_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        help=f"Folder for everything a run writes (default: ${configs.OUTPUT_DIR_ENV} or ./{configs.DEFAULT_OUTPUT_DIR}).",
    )


def _prepare_data(args) -> int:
    from pipeline import inputs, taxi_sample

    settings = configs.Settings.resolve(args.output_dir)
    rows_by_span = taxi_sample.write_spans(taxi_sample.sample_csv_path(), settings.prepared_sample_dir)
    print(
        f"Wrote {sum(rows_by_span.values())} rows of the Chicago Taxi sample as {len(rows_by_span)} spans under "
        f"{settings.prepared_sample_dir}:"
    )
    for span, rows in rows_by_span.items():
        print(f"  {configs.SPAN_FOLDER_PREFIX}{span}: {rows} rows")
    # The span windows ExampleGen reads, as relative links: the folder can be copied or mounted
    # elsewhere whole (the Kubeflow shared volume is such a folder).
    inputs.prepare(settings)
    print(f"ExampleGen's span windows are under {settings.example_gen_input}")
    return 0


def _run(args) -> int:
    from pipeline import inputs

    settings = configs.Settings.resolve(args.output_dir, args.data_root, args.schema, args.serving_logs)
    started = time.monotonic()
    try:
        spans = inputs.prepare(settings)
    except inputs.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Imported only once the inputs are known to be good: TFX, TFMA and TensorFlow take seconds to load.
    from pipeline import local_pipeline, run_report

    span = args.span if args.span is not None else max(spans)
    if span not in spans:
        print(f"error: --span {span} has no data; spans available: {spans}", file=sys.stderr)
        return 2
    print(
        f"Running {configs.PIPELINE_NAME} on span {span} of {settings.spans_dir}; outputs in {settings.output_dir}"
    )
    previous_run_id = run_report.latest_run_id(settings.metadata_path, configs.PIPELINE_NAME)
    error = None
    try:
        run_report.ProgressReportingBeamDagRunner().run(local_pipeline.build(settings, args.span))
    except Exception as raised:
        error = raised
    summary = run_report.summarize_latest_run(settings.metadata_path, configs.PIPELINE_NAME)
    # A run that failed before its first component started left no record; don't report the previous one.
    if summary is None or summary["run_id"] == previous_run_id:
        summary = None
    # Data rejected by validation is an outcome the summary explains, not a crash: no traceback.
    rejected = summary is not None and summary["stopped_before_training"]
    if error is not None and not rejected:
        traceback.print_exception(error)
        print(f"error: the pipeline failed: {type(error).__name__}: {error}", file=sys.stderr)
    if summary is not None:
        summary["wall_seconds"] = round(time.monotonic() - started, 1)
        run_report.write_summary(summary, settings.run_summary_path)
        run_report.print_summary(summary, settings.run_summary_path)
        _publish_report(summary, settings)
        print(f"Wall time: {summary['wall_seconds']:.1f} s")
    if rejected:
        print(
            "error: the training data failed validation (anomalies above); nothing was trained or pushed.",
            file=sys.stderr,
        )
        return DATA_REJECTED_EXIT_CODE
    return 1 if error is not None else 0


def _summary(args) -> int:
    from pipeline import run_report

    settings = configs.Settings.resolve(args.output_dir)
    summary = run_report.summarize_latest_run(settings.metadata_path, configs.PIPELINE_NAME)
    if summary is None:
        print(
            f"error: no run of {configs.PIPELINE_NAME} recorded in {settings.metadata_path}", file=sys.stderr
        )
        return 2
    run_report.write_summary(summary, settings.run_summary_path)
    run_report.print_summary(summary, settings.run_summary_path)
    _publish_report(summary, settings)
    return 0


def _publish_report(summary: dict, settings: configs.Settings) -> None:
    """Copies the run's slice report to outputs/slice_report.html, the path that stays the same."""
    from pipeline import slice_table

    if summary.get("slice_report"):
        copy = slice_table.publish(Path(summary["slice_report"]), settings.slice_report_path)
        print(f"Slice report copied to {copy} (`make report` prints its table)")


def _report(args) -> int:
    from pipeline import slice_table

    settings = configs.Settings.resolve(args.output_dir)
    found = slice_table.find_report(settings.metadata_path, configs.PIPELINE_NAME, args.run_id)
    if found is None:
        which = f"run {args.run_id}" if args.run_id else f"no run of {configs.PIPELINE_NAME}"
        print(f"error: {which} is not recorded in {settings.metadata_path}", file=sys.stderr)
        return 2
    run_id, report_dir = found
    if report_dir is None:
        print(
            f"error: run {run_id} has no slice report (its SliceReport step did not complete)",
            file=sys.stderr,
        )
        return 2
    slice_table.print_report(report_dir, run_id, limit=None if args.all else args.top)
    html_file = report_dir / configs.SLICE_REPORT_FILE
    copy = slice_table.publish(html_file, settings.slice_report_path)
    print(f"\nHTML report: {html_file}\n       copy: {copy}")
    if args.open:
        import webbrowser

        if not webbrowser.open(copy.as_uri()):
            print("No browser found here: open the file above on a machine with one.", file=sys.stderr)
    return 0


def _drift(args) -> int:
    from pipeline import inputs

    settings = configs.Settings.resolve(args.output_dir, args.data_root, args.schema, args.serving_logs)
    try:
        inputs.prepare(settings)
    except inputs.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from pipeline import drift, drift_report_html

    spans = inputs.discover_spans(settings.spans_dir)
    schema = drift.read_schema(settings.schema_path)
    comparisons = drift.comparisons(settings, spans)
    table = drift.drift_table(schema, comparisons)
    print(
        "Distances between consecutive spans (drift) and serving logs vs. the training window (skew),\n"
        "L-infinity for categorical features, Jensen-Shannon divergence for numeric ones; thresholds from "
        f"{settings.schema_path} ('-': not gated), '*' = above its threshold.\n"
    )
    print(drift.format_table(table))
    table_path = settings.drift_dir / configs.DRIFT_TABLE_FILE
    drift.write_table(table, table_path)
    settings.drift_report_path.write_text(drift_report_html.render(table, comparisons, schema, args.top))
    print(f"\nTable: {table_path}\nHTML page: {settings.drift_report_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taxi-pipeline", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="Keep TensorFlow, absl and Beam logs.")
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser(
        "prepare-data", help="Write the Chicago Taxi sample from the tfx wheel as spans."
    )
    _add_folder_flags(prepare)
    prepare.set_defaults(handler=_prepare_data)

    run = commands.add_parser("run", help="Run the whole pipeline on Beam's DirectRunner.")
    _add_folder_flags(run)
    run.add_argument(
        "--data-root",
        help=f"Folder of span-N/ sub-folders of taxi CSVs (default: ${configs.DATA_ROOT_ENV}, else the prepared sample).",
    )
    run.add_argument(
        "--schema",
        help=f"Curated schema (schema.pbtxt) to validate against (default: ${configs.SCHEMA_PATH_ENV}, else schema/schema.pbtxt).",
    )
    run.add_argument(
        "--serving-logs",
        help=f"Folder of serving request CSVs to check for skew (default: ${configs.SERVING_LOGS_ENV}; with the "
        "sample, its newest half-year without tips; with --data-root and neither, skew is not checked).",
    )
    run.add_argument(
        "--span", type=int, help="Evaluate on the spans ending at this one instead of the newest."
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Keep TensorFlow, absl and Beam logs.",
    )
    run.set_defaults(handler=_run)

    summary = commands.add_parser("summary", help="Print (and rewrite) the summary of the latest run.")
    _add_folder_flags(summary)
    summary.set_defaults(handler=_summary)

    report = commands.add_parser(
        "report",
        help="Print the slice table of the latest run (or --run-id) and the path of its HTML report.",
    )
    _add_folder_flags(report)
    report.add_argument("--run-id", help="A run id from the run summary (default: the latest run).")
    report.add_argument("--top", type=int, default=25, help="Print the N worst slices (default 25).")
    report.add_argument("--all", action="store_true", help="Print every slice.")
    report.add_argument("--open", action="store_true", help="Also open the HTML report in a browser.")
    report.set_defaults(handler=_report)

    drift = commands.add_parser(
        "drift",
        help="Print every feature's drift between consecutive spans and serving-vs-training skew; write the HTML page.",
    )
    _add_folder_flags(drift)
    drift.add_argument("--data-root", help="As for `run`.")
    drift.add_argument("--serving-logs", help="As for `run`.")
    drift.add_argument("--schema", help="As for `run`: its comparators set the thresholds shown.")
    drift.add_argument("--top", type=int, default=6, help="Plot the N most drifted features (default 6).")
    drift.set_defaults(handler=_drift)

    args = parser.parse_args(argv)
    quiet_logs(args.verbose)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
