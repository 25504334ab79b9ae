"""`taxi-pipeline trials`: the latest tuning run's trials, read from ML Metadata (read-only)."""

import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders
from config import pipeline as pipeline_config


def _trials(args) -> int:
    from reports import tuning_trials

    settings = folders.Settings.resolve(args.output_dir)
    try:
        tuning = tuning_trials.latest_tuning(
            settings.metadata_path, pipeline_config.PIPELINE_NAME, args.run_id
        )
    except tuning_trials.NoTuningRun as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    trials = tuning["trials"]
    print(
        f"Tuning in run {tuning['run_id']}: {len(trials)} trials, by {tuning['objective']} (AUC on the "
        "evaluation split, higher is better); * the best, which the Trainer trained"
    )
    for line in tuning_trials.table_lines(tuning):
        print(line)
    return 0


def register(commands) -> None:
    trials = commands.add_parser(
        "trials",
        help="Print the trials of the latest tuning run (`make tune`): hyperparameters, objective, the best.",
    )
    add_folder_flags(trials)
    trials.add_argument(
        "--run-id", help="A run id from the run summary (default: the latest run that tuned)."
    )
    trials.set_defaults(handler=_trials)
