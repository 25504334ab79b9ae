"""`taxi-pipeline rollback`: production back to an earlier version, recorded for good (and undone).

It takes the registry's lock alone (registry/versions.py), as serving's rollback and the canary analysis
do: a rollback need not wait for a run to finish, and a run's Pusher decides on the rollback's result.
"""

import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders


def _rollback(args) -> int:
    from registry import versions

    serving_dir = folders.Settings.resolve(args.output_dir).serving_model_dir
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
    for found in versions.not_whole(serving_dir):
        print(f"  {found.path.name}  never production: {found.reason}")


def register(commands) -> None:
    rollback = commands.add_parser(
        "rollback",
        help="Take the production model out of production, for good: the previous version (or --to V) serves "
        "again, and the pipeline never pushes the rolled-back model again (--undo V reverses it).",
    )
    add_folder_flags(rollback)
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
