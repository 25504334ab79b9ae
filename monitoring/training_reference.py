"""The training data served inputs are compared with: the newest span the pipeline read, without the
trips the loop exported from served traffic."""

import csv
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config
from models import features
from monitoring import spans


def newest_span(settings: folders.Settings) -> tuple[str, list[Path]] | None:
    """(span folder name, CSV files) of the newest span the pipeline read, without the trips the loop
    exported from served traffic (`served-*.csv`): what served inputs are compared with."""
    spans_dir = settings.checked_spans_dir
    span_folders = (
        sorted(spans_dir.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*")) if spans_dir.is_dir() else []
    )
    for folder in reversed(span_folders):
        files = [f for f in sorted(folder.glob("*.csv")) if not f.name.startswith(spans.FILE_PREFIX)]
        if files:
            return folder.name, files
    return None


def missing_ratios(settings: folders.Settings) -> dict[str, float]:
    """Per model input, the share of empty values in the training reference: what the served missing
    rates are compared with."""
    reference = newest_span(settings)
    if reference is None:
        return {}
    empty, rows = dict.fromkeys(features.MODEL_INPUTS, 0), 0
    for path in reference[1]:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows += 1
                for name in empty:
                    empty[name] += (row.get(name) or "").strip() == ""
    return {name: count / rows for name, count in empty.items()} if rows else {}
