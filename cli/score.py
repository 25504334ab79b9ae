"""`taxi-pipeline score`: every trip of a span scored by the production model, offline (serving/batch_scoring.py)."""

import sys
from pathlib import Path

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders


def _score(args) -> int:
    from serving import batch_scoring

    settings = folders.Settings.resolve(args.output_dir, args.data_root)
    output = (
        Path(args.output)
        if args.output
        else settings.output_dir / "scores" / f"span-{args.span}.{args.format}"
    )
    try:
        scored = batch_scoring.score_span(settings.spans_dir, args.span, settings.serving_model_dir, output)
    except batch_scoring.ScoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    print(
        f"Scored {scored.trips:,} trips of span {args.span} with version {scored.version} in {scored.seconds:.2f} s "
        f"({scored.trips / max(scored.seconds, 1e-9):,.0f} a second): {scored.output}"
    )
    return 0


def register(commands) -> None:
    score = commands.add_parser(
        "score",
        help="Score every trip of a span with the model in production; writes trip_id,big_tipper_probability.",
    )
    add_folder_flags(score)
    score.add_argument("--data-root", help="The span folders (default: the prepared sample, as for `run`).")
    score.add_argument("--span", type=int, required=True, help="The span to score, e.g. 20162.")
    score.add_argument("--format", choices=("csv", "parquet"), default="csv", help="The output's format.")
    score.add_argument("--output", help="The output file (default: <output dir>/scores/span-N.<format>).")
    score.set_defaults(handler=_score)
