"""`taxi-pipeline`: prepare the data, run the pipeline locally, reprint a run's summary or slice report."""

import argparse
import sys

from pipeline import configs, local_runner
from pipeline.local_runner import BAD_INPUT_EXIT_CODE
from pipeline.quiet_logs import quiet_logs


def _add_folder_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        help=f"Folder for everything a run writes (default: ${configs.OUTPUT_DIR_ENV} or ./{configs.DEFAULT_OUTPUT_DIR}).",
    )


def _holding_output_folder(handler):
    """A command that writes into the output folder: it holds the folder, as a run does (pipeline/output_lock.py)."""

    def locked(args) -> int:
        settings = configs.Settings.resolve(args.output_dir)
        return local_runner.holding_output_folder(
            settings, f"taxi-pipeline {args.command}", lambda: handler(args)
        )

    return locked


@_holding_output_folder
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
    settings = configs.Settings.resolve(args.output_dir, args.data_root, args.schema, args.serving_logs)
    return local_runner.run(settings, args.span, push_replay=args.push_replay)


@_holding_output_folder
def _summary(args) -> int:
    from reports import run_summary

    settings = configs.Settings.resolve(args.output_dir)
    summary = run_summary.summarize_latest_run(settings.metadata_path, configs.PIPELINE_NAME)
    if summary is None:
        print(
            f"error: no run of {configs.PIPELINE_NAME} recorded in {settings.metadata_path}", file=sys.stderr
        )
        return BAD_INPUT_EXIT_CODE
    local_runner.publish_summary(summary, settings)
    return local_runner.exit_code_of(summary)


def _report(args) -> int:
    from reports import slice_table

    settings = configs.Settings.resolve(args.output_dir)
    found = slice_table.find_report(settings.metadata_path, configs.PIPELINE_NAME, args.run_id)
    if found is None:
        which = f"run {args.run_id}" if args.run_id else f"no run of {configs.PIPELINE_NAME}"
        print(f"error: {which} is not recorded in {settings.metadata_path}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    run_id, report_dir = found
    if report_dir is None:
        print(
            f"error: run {run_id} has no slice report (its SliceReport step did not complete)",
            file=sys.stderr,
        )
        return BAD_INPUT_EXIT_CODE
    slice_table.print_report(report_dir, run_id, limit=None if args.all else args.top)
    html_file = report_dir / configs.SLICE_REPORT_FILE
    copy = slice_table.publish(html_file, settings.slice_report_path)
    print(f"\nHTML report: {html_file}\n       copy: {copy}")
    if args.open:
        import webbrowser

        if not webbrowser.open(copy.as_uri()):
            print("No browser found here: open the file above on a machine with one.", file=sys.stderr)
    return 0


@_holding_output_folder
def _drift(args) -> int:
    from pipeline import input_checks, inputs

    settings = configs.Settings.resolve(args.output_dir, args.data_root, args.schema, args.serving_logs)
    try:
        inputs.prepare(settings)
    except input_checks.InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    from reports import drift, drift_report_html

    spans = input_checks.discover_spans(settings.checked_spans_dir)
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


@_holding_output_folder
def _rollback(args) -> int:
    from registry import versions

    serving_dir = configs.Settings.resolve(args.output_dir).serving_model_dir
    try:
        if args.undo:
            undone = versions.undo_rollback(serving_dir, args.undo)
            print(
                f"Rollback of version {undone.version} ({undone.rolled_back_at}) undone: it may serve and be pushed again."
            )
        elif not args.list:
            for rollback in versions.record_rollback(serving_dir, args.to, args.reason):
                print(
                    f"Rolled back version {rollback.version} (model {rollback.fingerprint}): it stays in {serving_dir}, for audit, and is never pushed again."
                )
    except versions.RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    _print_versions(serving_dir)
    return 0


def _print_versions(serving_dir) -> None:
    from registry import versions

    rolled_back = {r.version: r for r in versions.rollbacks(serving_dir)}
    production = versions.production_version(serving_dir)
    print(f"Versions in {serving_dir} (production: {production or 'none'}):")
    for version in versions.complete_versions(serving_dir):
        rollback = rolled_back.get(version)
        state = (
            "production"
            if version == production
            else (
                f"rolled back {rollback.rolled_back_at}" + (f": {rollback.reason}" if rollback.reason else "")
                if rollback
                else ""
            )
        )
        print(f"  {version}  {state}")


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
        "--span",
        type=int,
        help="Replay: evaluate on the spans ending at this one instead of the newest. A replay's model is "
        "judged against production and not pushed, unless --push-replay.",
    )
    run.add_argument(
        "--push-replay",
        action="store_true",
        help="Push a blessed model of a replayed older span (it becomes production, though trained on older data).",
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

    rollback = commands.add_parser(
        "rollback",
        help="Take the production model out of production, for good: the previous version (or --to V) serves "
        "again, and the pipeline never pushes the rolled-back model again (--undo V reverses it).",
    )
    _add_folder_flags(rollback)
    rollback.add_argument(
        "--to", metavar="VERSION", help="The version to return to (default: the one before production)."
    )
    rollback.add_argument(
        "--reason", default="", help="Why, for the record (shown by `taxi-pipeline rollback --list`)."
    )
    rollback.add_argument(
        "--undo", metavar="VERSION", help="Let a rolled-back version serve, and be pushed, again."
    )
    rollback.add_argument("--list", action="store_true", help="List the versions and the rollbacks recorded.")
    rollback.set_defaults(handler=_rollback)

    args = parser.parse_args(argv)
    quiet_logs(args.verbose)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
