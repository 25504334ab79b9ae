"""`taxi-pipeline`: prepare the data, run the pipeline locally, reprint a run's summary or slice report,
serve, monitor.

Each subcommand lives in its own module of this package; this one only assembles them."""

import argparse
import sys

from cli import (
    accept_change,
    adopt,
    drift,
    monitor,
    prepare_data,
    report,
    rollback,
    run,
    score,
    serve,
    summary,
    trials,
)
from config import folders
from pipeline.local_runner import BAD_INPUT_EXIT_CODE
from pipeline.quiet_logs import quiet_logs

SUBCOMMANDS = (
    prepare_data,
    run,
    summary,
    report,
    drift,
    score,
    trials,
    accept_change,
    rollback,
    adopt,
    serve,
    monitor,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taxi-pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="Keep TensorFlow, absl and Beam logs.")
    commands = parser.add_subparsers(dest="command", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.register(commands)
    args = parser.parse_args(argv)
    quiet_logs(args.verbose)
    try:
        return args.handler(args)
    except folders.UnsupportedPath as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
