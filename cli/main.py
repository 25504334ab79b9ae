"""`taxi-pipeline`: prepare the data, run the pipeline locally, reprint a run's summary or slice report."""

import argparse
import csv
import json
import sys
from pathlib import Path

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
    settings = configs.Settings.resolve(
        args.output_dir, args.data_root, args.schema, args.serving_logs, args.serving_logs_hours
    )
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

    settings = configs.Settings.resolve(
        args.output_dir, args.data_root, args.schema, args.serving_logs, args.serving_logs_hours
    )
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


def _monitor(args) -> int:
    from monitoring import control, feedback, loop, page, replay
    from serving import stack

    settings = configs.Settings.resolve(args.output_dir, args.data_root)
    try:
        if args.action == "start":
            slot = control.start(settings)
            print(
                f"Monitor running (pid {slot['pid']}); feedback at {configs.FEEDBACK_PATH} on the stack's port."
            )
        elif args.action == "stop":
            print("Monitor stopped." if control.stop(settings) else "No monitor was running.")
        elif args.action == "feedback":
            return _feedback_file(settings, Path(args.file), feedback)
        elif args.action == "report":
            # The replay's scenarios run stacks of their own (outputs/replay/<scenario>): their pages too.
            replays = sorted(
                p for p in (settings.output_dir / "replay").glob("*") if (p / "request_log").is_dir()
            )
            for folder in [settings.output_dir, *replays]:
                if folder != settings.output_dir or settings.request_log_dir.is_dir() or not replays:
                    path, lines = page.write(configs.Settings.resolve(str(folder)), args.minutes)
                    print("\n".join(lines))
                    print(f"Monitor page: {path}\n")
        elif args.action == "loop":
            if settings.data_root is None:
                print(
                    "error: the loop writes labelled trips into a data root: pass --data-root (or DATA=)",
                    file=sys.stderr,
                )
                return BAD_INPUT_EXIT_CODE
            loop.run_once(settings, loop.Policy(min_new_labelled_trips=args.min_new_trips), force=args.force)
        elif args.action == "replay":
            options = replay.Options(
                scenario=args.scenario,
                rate=args.rate,
                feedback_delay_seconds=args.feedback_delay,
                restart_server_at=args.restart_server_at,
                analysis_interval_seconds=args.analysis_interval,
            )
            replay.run(settings.output_dir / "replay" / args.scenario, options)
    except stack.StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    return 0


def _feedback_file(settings: configs.Settings, path: Path, feedback) -> int:
    """Stores the labels of a CSV file; names every refused row. Exit 2 when any row was refused."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if (
                not reader.fieldnames
                or "request_id" not in reader.fieldnames
                or "tips" not in reader.fieldnames
            ):
                print(
                    f"error: {path}: expected a CSV header with request_id and tips (and trip, fare), got {reader.fieldnames}",
                    file=sys.stderr,
                )
                return BAD_INPUT_EXIT_CODE
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        print(f"error: {path}: not readable as a UTF-8 CSV ({error})", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    valid, refused = feedback.parse(rows)
    stored, duplicates = feedback.FeedbackStore(settings.feedback_dir).add(valid)
    print(f"{path}: {len(stored)} label(s) stored in {settings.feedback_dir}")
    for reason in refused:
        line = int(reason.split(":")[0].split()[1]) + 2  # data row index -> file line (after the header)
        print(f"  refused, line {line}: {reason.split(':', 1)[1].strip()}", file=sys.stderr)
    for item in duplicates:
        print(
            f"  refused: request {item.request_id}, trip {item.trip} was labelled already (the first label kept)",
            file=sys.stderr,
        )
    return BAD_INPUT_EXIT_CODE if refused or duplicates else 0


def _serve(args) -> int:
    from serving import request_contract, stack

    settings = configs.Settings.resolve(args.output_dir)
    paths = stack.StackPaths.of(settings)
    try:
        if args.action == "start":
            state = stack.start(paths, args.version, args.port, args.prometheus_port)
            url = f"http://127.0.0.1:{state['port']}"
            print(
                f"Serving version {state['stable']['version']} at {url} (TF Serving's REST API; Prometheus at {state['prometheus']['url']})"
            )
            print("Try it:")
            example = json.dumps({"instances": [request_contract.EXAMPLE_TRIP]})
            print(f"  curl -s {url}/v1/models/{configs.SERVING_MODEL_NAME}:predict -d '{example}'")
            from monitoring import control

            control.start(settings)
            print(
                f"Labels that arrive later: POST {url}{configs.FEEDBACK_PATH} (docs/monitoring.md); `make monitor` for the page."
            )
            print("`make serve-status` shows what is live; `make serve-stop` stops it all.")
        elif args.action == "stop":
            stopped = stack.stop(paths)
            print("Stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif args.action == "status":
            print(json.dumps(stack.status(paths), indent=2))
        elif args.action == "shadow":
            _say_traffic(stack.shadow(paths, args.version))
        elif args.action == "canary":
            _say_traffic(stack.canary(paths, args.version, args.percent))
            if args.auto:
                analysis = stack.start_analysis(paths, settings.output_dir, args.interval)
                print(
                    f"Automatic analysis every {args.interval:g} s (pid {analysis['pid']}): decisions in {paths.root / 'analysis.log'}"
                )
        elif args.action == "promote":
            _say_traffic(stack.promote(paths))
        elif args.action == "switch":
            _say_traffic(stack.switch(paths, args.version))
        elif args.action == "manifests":
            from serving import kubernetes_manifests

            found = kubernetes_manifests.manifests(
                args.stable,
                args.candidate,
                None if args.shadow else args.canary_percent,
                args.shadow,
                args.host,
            )
            written = kubernetes_manifests.write(
                paths.root / "kubernetes",
                paths.serving_dir,
                found,
                [v for v in (args.stable, args.candidate) if v],
            )
            print("Validated against the KServe and Istio CRD schemas and written:")
            for path in written:
                print(f"  {path}")
            print(f"Per-version model folders for the storage URIs: {paths.serving_dir.parent / 'kserve'}")
        elif args.action == "rollback":
            done = stack.rollback(paths, args.reason)
            print(
                f"Rolled back version {done.version}: all traffic on the version kept {done.seconds:.2f} s after "
                f"the command; recorded in {paths.serving_dir}, never pushed again."
            )
            _say_traffic(done.state)
    except stack.StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    return 0


def _say_traffic(state: dict) -> None:
    stable, candidate = state["stable"]["version"], (state.get("candidate") or {}).get("version")
    described = {
        "single": f"all traffic to version {stable}",
        "shadow": f"all traffic to version {stable}; a copy of each request to version {candidate}",
        "canary": f"{state['canary_percent']:g} % of traffic to version {candidate}, the rest to {stable}",
        "blue-green": f"all traffic to version {stable}; version {candidate} kept running for a rollback",
    }[state["mode"]]
    print(f"Now: {described}.")


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
        "--serving-logs-hours",
        type=float,
        help="Read a request log's last this many hours for the skew check (default: since the production "
        f"model was pushed; ${configs.SERVING_LOGS_HOURS_ENV}). Files in sub-folders (its archive) are never read.",
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
    drift.add_argument("--serving-logs-hours", type=float, help="As for `run`.")
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

    serve = commands.add_parser(
        "serve",
        help="The local serving stack (nginx, a model server per live version, Prometheus): start, status, "
        "stop, and the deployment patterns (shadow, canary, promote, switch, rollback). docs/serving.md.",
    )
    _add_folder_flags(serve)
    actions = serve.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="Start the stack on the production version (or --version).")
    start.add_argument("--version", help="The version to serve (default: production).")
    start.add_argument("--port", type=int, default=configs.SERVING_PORT, help="nginx's port (the base URL).")
    start.add_argument("--prometheus-port", type=int, default=configs.PROMETHEUS_PORT)
    actions.add_parser("status", help="What is live, and whether each process is up and ready.")
    actions.add_parser("stop", help="Stop every process of the stack.")
    shadow = actions.add_parser(
        "shadow", help="Stable answers everything; a copy of each request goes to VERSION."
    )
    shadow.add_argument("version")
    canary = actions.add_parser(
        "canary", help="VERSION answers --percent of requests (sticky by X-Request-Key)."
    )
    canary.add_argument("version")
    canary.add_argument("--percent", type=float, default=5.0)
    canary.add_argument(
        "--auto", action="store_true", help="Let the analysis ramp it up, promote or roll it back."
    )
    canary.add_argument(
        "--interval", type=float, default=configs.CANARY_INTERVAL_SECONDS, help="Seconds per check."
    )
    actions.add_parser("promote", help="The canary (or shadow) becomes stable.")
    switch = actions.add_parser(
        "switch", help="Blue-green: all traffic to VERSION at once; rollback switches back."
    )
    switch.add_argument("version")
    rollback = actions.add_parser(
        "rollback", help="All traffic back to stable now, and the other version recorded as rolled back."
    )
    rollback.add_argument("--reason", default="", help="Why, for the record.")
    manifests = actions.add_parser(
        "manifests",
        help="Write KServe/Istio manifests for the same patterns on a cluster (validated against the CRDs).",
    )
    manifests.add_argument("--stable", required=True, help="The version serving today.")
    manifests.add_argument("--candidate", help="The new version (canary, or shadow with --shadow).")
    manifests.add_argument("--canary-percent", type=float, default=10.0)
    manifests.add_argument(
        "--shadow", action="store_true", help="Mirror to the candidate instead of splitting."
    )
    manifests.add_argument("--host", default="taxi.example.com", help="The host clients call (Istio).")
    serve.set_defaults(handler=_serve)

    monitor = commands.add_parser(
        "monitor",
        help="Monitoring the served model and closing the loop: feedback, the monitor page, the retraining "
        "loop and the replay demonstration. docs/monitoring.md.",
    )
    _add_folder_flags(monitor)
    monitor.add_argument(
        "--data-root", help="The span folders the loop writes labelled trips into and retrains on (`loop`)."
    )
    monitor_actions = monitor.add_subparsers(dest="action", required=True)
    monitor_actions.add_parser("start", help="Start the monitor beside a running stack (`serve start` does).")
    monitor_actions.add_parser("stop", help="Stop the monitor.")
    feedback = monitor_actions.add_parser(
        "feedback",
        help="Labels from a CSV: request_id, tips (and trip, fare). Malformed rows and duplicates are named.",
    )
    feedback.add_argument("file", help="The CSV of labels.")
    page = monitor_actions.add_parser(
        "report", help="Write the monitor page (outputs/monitor.html) and print a summary."
    )
    page.add_argument("--minutes", type=float, default=30.0, help="The time series' window.")
    loop_parser = monitor_actions.add_parser(
        "loop", help="One step of the loop: export labelled trips and retrain when the policy says so."
    )
    loop_parser.add_argument("--min-new-trips", type=int, default=configs.RETRAIN_MIN_NEW_LABELLED_TRIPS)
    loop_parser.add_argument("--force", action="store_true", help="Retrain on any new labelled trips.")
    replay = monitor_actions.add_parser(
        "replay", help="The loop on real data: replay 2016 H2 as traffic with delayed tips, retrain, canary."
    )
    replay.add_argument("--scenario", choices=("clean", "concept"), default="clean")
    replay.add_argument("--rate", type=float, default=20.0, help="Trips a second.")
    replay.add_argument(
        "--feedback-delay", type=float, default=2.0, help="Seconds before a trip's tip arrives."
    )
    replay.add_argument(
        "--restart-server-at", type=int, help="Restart the stable server after this many trips."
    )
    replay.add_argument("--analysis-interval", type=float, default=configs.CANARY_INTERVAL_SECONDS)
    monitor.set_defaults(handler=_monitor)

    args = parser.parse_args(argv)
    quiet_logs(args.verbose)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
