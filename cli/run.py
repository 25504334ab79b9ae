"""`taxi-pipeline run`: the whole pipeline on Beam's DirectRunner, as `make run` runs it."""

import argparse

from cli.common import add_folder_flags
from config import folders
from config import pipeline as pipeline_config
from pipeline import local_runner


def _run(args) -> int:
    settings = folders.Settings.resolve(
        args.output_dir, args.data_root, args.schema, args.serving_logs, args.serving_logs_hours
    )
    tuning = {"training": pipeline_config.Training(tune=True)} if args.tune else {}
    return local_runner.run(settings, args.span, push_replay=args.push_replay, **tuning)


def register(commands) -> None:
    run = commands.add_parser("run", help="Run the whole pipeline on Beam's DirectRunner.")
    add_folder_flags(run)
    run.add_argument(
        "--data-root",
        help=f"Folder of span-N/ sub-folders of taxi CSVs (default: ${folders.DATA_ROOT_ENV}, else the prepared sample).",
    )
    run.add_argument(
        "--schema",
        help=f"Curated schema (schema.pbtxt) to validate against (default: ${folders.SCHEMA_PATH_ENV}, else schema/schema.pbtxt).",
    )
    run.add_argument(
        "--serving-logs",
        help=f"Folder of serving request CSVs to check for skew (default: ${folders.SERVING_LOGS_ENV}; with the "
        "sample, its newest half-year without tips; with --data-root and neither, skew is not checked).",
    )
    run.add_argument(
        "--serving-logs-hours",
        type=float,
        help="Read a request log's last this many hours for the skew check (default: since the production "
        f"model was pushed; ${folders.SERVING_LOGS_HOURS_ENV}). Files in sub-folders (its archive) are never read.",
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
        "--tune",
        action="store_true",
        help=f"Tune first: TFX's Tuner searches {pipeline_config.TUNING_TRIALS} points of the model's "
        "hyperparameters and the Trainer trains the best (`taxi-pipeline trials` lists them).",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Keep TensorFlow, absl and Beam logs.",
    )
    run.set_defaults(handler=_run)
