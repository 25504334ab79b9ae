"""`taxi-pipeline report`: a run's slice table, and the path of its HTML page."""

import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders
from config import pipeline as pipeline_config


def _report(args) -> int:
    from reports import slice_table

    settings = folders.Settings.resolve(args.output_dir)
    found = slice_table.find_report(settings.metadata_path, pipeline_config.PIPELINE_NAME, args.run_id)
    if found is None:
        which = f"run {args.run_id}" if args.run_id else f"no run of {pipeline_config.PIPELINE_NAME}"
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
    summary = _print_accepted_changes(settings, run_id)
    html_file = report_dir / folders.SLICE_REPORT_FILE
    copy = slice_table.publish(html_file, settings.slice_report_path, summary.get("model_card"))
    print(f"\nHTML report: {html_file}\n       copy: {copy}")
    if summary.get("model_card"):
        print(f" model card: {summary['model_card']}")
    if args.open:
        import webbrowser

        if not webbrowser.open(copy.as_uri()):
            print("No browser found here: open the file above on a machine with one.", file=sys.stderr)
    return 0


def _print_accepted_changes(settings: folders.Settings, run_id: str) -> dict:
    """The accepted changes of units the run's data was validated against: its model learned from them.
    Returns the run's summary ({} when there is none)."""
    from reports import run_summary

    summary = (
        run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME, run_id) or {}
    )
    lines = run_summary.accepted_change_lines(summary.get("data_validation") or {})
    if lines:
        print("\nThe data this model learned from, validated with accepted changes of units:")
        for line in lines:
            print(f"  {line}")
    return summary


def register(commands) -> None:
    report = commands.add_parser(
        "report",
        help="Print the slice table of the latest run (or --run-id) and the path of its HTML report.",
    )
    add_folder_flags(report)
    report.add_argument("--run-id", help="A run id from the run summary (default: the latest run).")
    report.add_argument("--top", type=int, default=25, help="Print the N worst slices (default 25).")
    report.add_argument("--all", action="store_true", help="Print every slice.")
    report.add_argument("--open", action="store_true", help="Also open the HTML report in a browser.")
    report.set_defaults(handler=_report)
