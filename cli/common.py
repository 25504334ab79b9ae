"""What every subcommand shares: the output-folder flag, holding the output folder, the exit status for
bad input."""

import argparse

from config import folders
from pipeline import local_runner
from pipeline.local_runner import BAD_INPUT_EXIT_CODE

__all__ = ["BAD_INPUT_EXIT_CODE", "add_folder_flags", "holding_output_folder"]


def add_folder_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        help=f"Folder for everything a run writes (default: ${folders.OUTPUT_DIR_ENV} or ./{folders.DEFAULT_OUTPUT_DIR}).",
    )


def holding_output_folder(handler):
    """A command that writes into the output folder: it holds the folder, as a run does (pipeline/output_lock.py)."""

    def locked(args) -> int:
        settings = folders.Settings.resolve(args.output_dir)
        return local_runner.holding_output_folder(
            settings, f"taxi-pipeline {args.command}", lambda: handler(args)
        )

    return locked
