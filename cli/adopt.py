"""`taxi-pipeline adopt`: take in a model copied by hand, once it is checked to load and answer.

A version folder is production only with the completion record our Pusher writes last
(registry/completion.py). A model copied in any other way (`cp`, `gsutil cp`, TFX's stock Pusher) has
none, so a run moves it to `.quarantine/`. This command loads it exactly as the model server does (both
signatures, and one prediction), then records it, under the registry's lock: in place for a numbered
folder of the serving directory, else copied in whole as a new version, which becomes production.
"""

import sys
from pathlib import Path

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders


def _adopt(args) -> int:
    from registry import versions
    from serving.model import LoadedModel

    serving_dir = folders.Settings.resolve(args.output_dir).serving_model_dir
    source = Path(args.source).resolve()
    if not (source / versions.SAVED_MODEL_FILE).is_file():
        print(
            f"error: {source} holds no {versions.SAVED_MODEL_FILE}: not a SavedModel folder", file=sys.stderr
        )
        return BAD_INPUT_EXIT_CODE
    with versions.locked(serving_dir):  # nothing moves or records it between the check and the record
        try:
            LoadedModel(source)
        except Exception as error:  # whatever TensorFlow raises, the model is not servable
            print(
                f"error: {source} does not load as the model server loads it ({type(error).__name__}: "
                f"{error}); it is not adopted. Copy the whole SavedModel folder and try again.",
                file=sys.stderr,
            )
            return BAD_INPUT_EXIT_CODE
        try:
            version = versions.adopt(serving_dir, source, args.version)
        except versions.RegistryError as error:
            print(f"error: {error}", file=sys.stderr)
            return BAD_INPUT_EXIT_CODE
    production = versions.production_version(serving_dir)
    print(
        f"Adopted {source} as version {version} in {serving_dir}: it loads, and its completion record is "
        f"written. In production: version {production}."
    )
    return 0


def register(commands) -> None:
    adopt = commands.add_parser(
        "adopt",
        help="Take in a SavedModel copied by hand (or found in serving_model/.quarantine/): check that it "
        "loads and answers, and write its completion record, so it may serve.",
    )
    add_folder_flags(adopt)
    adopt.add_argument(
        "source",
        help="The model's folder: a numbered folder of the serving directory (adopted in place), or any "
        "other folder (copied in as a new version).",
    )
    adopt.add_argument("--version", help="The version number to copy it in as (default: now, so newest).")
    adopt.set_defaults(handler=_adopt)
