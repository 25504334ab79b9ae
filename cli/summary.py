"""`taxi-pipeline summary`: the latest run's summary, read back from ML Metadata and printed again."""

import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags, holding_output_folder
from config import folders
from config import pipeline as pipeline_config
from pipeline import local_runner


@holding_output_folder
def _summary(args) -> int:
    from reports import run_summary

    settings = folders.Settings.resolve(args.output_dir)
    summary = run_summary.summarize_latest_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    if summary is None:
        print(
            f"error: no run of {pipeline_config.PIPELINE_NAME} recorded in {settings.metadata_path}",
            file=sys.stderr,
        )
        return BAD_INPUT_EXIT_CODE
    local_runner.publish_summary(summary, settings)
    return local_runner.exit_code_of(summary)


def register(commands) -> None:
    summary = commands.add_parser("summary", help="Print (and rewrite) the summary of the latest run.")
    add_folder_flags(summary)
    summary.set_defaults(handler=_summary)
