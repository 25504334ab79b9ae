"""`taxi-pipeline monitor`: feedback, the monitor page, the retraining loop and the replay (docs/monitoring.md)."""

import csv
import sys
from pathlib import Path

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config


def _monitor(args) -> int:
    from serving import stack

    settings = folders.Settings.resolve(args.output_dir, args.data_root)
    try:
        return ACTIONS[args.action](settings, args)
    except stack.StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE


def _start(settings: folders.Settings, args) -> int:
    from monitoring import control

    slot = control.start(settings)
    print(
        f"Monitor running (pid {slot['pid']}); feedback at {monitoring_config.FEEDBACK_PATH} on the stack's port."
    )
    return 0


def _stop(settings: folders.Settings, args) -> int:
    from monitoring import control

    print("Monitor stopped." if control.stop(settings) else "No monitor was running.")
    return 0


def _feedback(settings: folders.Settings, args) -> int:
    """Stores the labels of a CSV file; names every refused row. Exit 2 when any row was refused."""
    from monitoring import feedback

    path = Path(args.file)
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


def _report(settings: folders.Settings, args) -> int:
    """The monitor page of the output folder, and of each replay scenario's (outputs/replay/<scenario>
    runs a stack of its own); the output folder's own only when it has served or no replay has."""
    from monitoring import page

    replays = sorted(p for p in (settings.output_dir / "replay").glob("*") if (p / "request_log").is_dir())
    for folder in [settings.output_dir, *replays]:
        if folder != settings.output_dir or settings.request_log_dir.is_dir() or not replays:
            path, lines = page.write(folders.Settings.resolve(str(folder)), args.minutes)
            print("\n".join(lines))
            print(f"Monitor page: {path}\n")
    return 0


def _loop(settings: folders.Settings, args) -> int:
    from monitoring import loop

    if settings.data_root is None:
        print(
            "error: the loop writes labelled trips into a data root: pass --data-root (or DATA=)",
            file=sys.stderr,
        )
        return BAD_INPUT_EXIT_CODE
    loop.run_once(settings, loop.Policy(min_new_labelled_trips=args.min_new_trips), force=args.force)
    return 0


def _replay(settings: folders.Settings, args) -> int:
    from monitoring import replay

    options = replay.Options(
        scenario=args.scenario,
        rate=args.rate,
        feedback_delay_seconds=args.feedback_delay,
        restart_server_at=args.restart_server_at,
        analysis_interval_seconds=args.analysis_interval,
    )
    replay.run(settings.output_dir / "replay" / args.scenario, options)
    return 0


ACTIONS = {
    "start": _start,
    "stop": _stop,
    "feedback": _feedback,
    "report": _report,
    "loop": _loop,
    "replay": _replay,
}


def register(commands) -> None:
    monitor = commands.add_parser(
        "monitor",
        help="Monitoring the served model and closing the loop: feedback, the monitor page, the retraining "
        "loop and the replay demonstration. docs/monitoring.md.",
    )
    add_folder_flags(monitor)
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
    loop_parser.add_argument(
        "--min-new-trips", type=int, default=monitoring_config.RETRAIN_MIN_NEW_LABELLED_TRIPS
    )
    loop_parser.add_argument(
        "--force", action="store_true", help="Retrain on any new labelled trips, without the cooldown."
    )
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
    replay.add_argument("--analysis-interval", type=float, default=serving_config.CANARY_INTERVAL_SECONDS)
    monitor.set_defaults(handler=_monitor)
