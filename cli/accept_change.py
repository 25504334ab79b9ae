"""`taxi-pipeline accept-change`: a real change of units in an amount (a fare-rate rise), accepted for the
record so the next run validates against it instead of stopping on it."""

import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags, holding_output_folder
from config import folders
from config import pipeline as pipeline_config


@holding_output_folder
def _accept_change(args) -> int:
    from components import data_reference

    settings = folders.Settings.resolve(args.output_dir)
    try:
        if not args.list:
            _accept(settings, args, data_reference)
        changes = data_reference.accepted_changes(settings.data_reference_dir)
    except data_reference.DataReferenceError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    print(f"Accepted changes of units in {settings.data_reference_dir} ({len(changes)}):")
    for change in changes:
        print(f"  {change.describe()}" + (f" [{change.found_by}]" if change.found_by else ""))
    return 0


def _accept(settings: folders.Settings, args, data_reference) -> None:
    """Records the change the latest run stopped on in `args.column`; raises DataReferenceError if none."""
    from reports import run_summary

    if not args.column or not args.reason.strip():
        raise data_reference.DataReferenceError(
            "accept-change needs --column and --reason (who accepts it and when are recorded too)."
        )
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    if summary is None or not summary.get("data_validation"):
        raise data_reference.DataReferenceError(
            f"No run with data validation is recorded in {settings.metadata_path}: there is no measured change to accept."
        )
    factor, span, found_by = data_reference.measured_change(
        summary["data_validation"]["unit_changes"],
        args.column,
        summary["run_id"],
        natural_factor=pipeline_config.MAX_UNIT_CHANGE,
    )
    change = data_reference.accept_change(
        settings.data_reference_dir, args.column, factor, span, args.reason, found_by, accepted_by=args.by
    )
    print(
        f"Accepted: {change.describe()}. The next run compares spans from {span} on with a reference in these "
        f"units; any other change, or {args.column} moving again, still stops it."
    )


def register(commands) -> None:
    accept = commands.add_parser(
        "accept-change",
        help="Accept a real change of units the latest run stopped on (e.g. a fare-rate rise): recorded with "
        "who, when, why and the span, and shown by every run it affects.",
    )
    add_folder_flags(accept)
    accept.add_argument(
        "--column", choices=pipeline_config.UNIT_CHANGE_AMOUNTS, help="The amount that changed."
    )
    accept.add_argument("--reason", default="", help="Why the change is real (required, for the record).")
    accept.add_argument("--by", help="Who accepts it (default: user@host).")
    accept.add_argument("--list", action="store_true", help="List the accepted changes only.")
    accept.set_defaults(handler=_accept_change)
