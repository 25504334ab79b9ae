"""Drift of the served inputs against the training data, with the pipeline's skew comparators and
thresholds: what the monitor page's drift table shows."""

import csv
import datetime
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from monitoring import feedback as feedback_io
from monitoring import training_reference
from registry import versions
from reports import drift


def against_training(settings: folders.Settings) -> dict:
    """Skew distances of the served inputs against the training reference (the newest span the pipeline
    read, without the loop's exports), with the pipeline's comparators and thresholds. Served: the
    request log's trips since the production model was pushed (the window the pipeline's skew check
    reads), a shadow's copies left out."""
    reference = training_reference.newest_span(settings)
    production = versions.production_version(settings.serving_model_dir)
    rows = served_since(settings, float(production) if production else 0.0)
    if reference is None or len(rows) < pipeline_config.MIN_EXAMPLES_TO_GATE_ON_DISTANCE:
        return {
            "rows": [],
            "served_trips": len(rows),
            "why_empty": f"fewer than {pipeline_config.MIN_EXAMPLES_TO_GATE_ON_DISTANCE} trips served since production "
            "was pushed, or no training data read yet",
        }
    span, training = reference
    comparison = _comparison(settings.loop_dir / "drift", rows, span, training)
    schema = drift.read_schema(settings.schema_path)
    return {"rows": skew_table(schema, drift.distances(comparison, schema)), "served_trips": len(rows),
            "training": span, "since_version": production}  # fmt: skip


def served_since(settings: folders.Settings, since: float) -> list[dict]:
    """The request log's trips answered at or after `since` (Unix time), a shadow's copies left out."""
    return [
        r
        for r in feedback_io.read_requests(settings.request_log_dir)
        if r["route"] != serving_config.SHADOW_ROUTE
        and datetime.datetime.fromisoformat(r["time"]).timestamp() >= since
    ]


def _comparison(folder: Path, rows: list[dict], span: str, training: list[Path]) -> drift.Comparison:
    """Statistics of the served rows and of the training files, computed in `folder`."""
    served, trained = folder / "served.csv", folder / "training.csv"
    folder.mkdir(parents=True, exist_ok=True)
    _write_rows(served, features.SERVING_COLUMNS, rows)
    _write_rows(trained, features.REQUIRED_COLUMNS, (r for path in training for r in _read_rows(path)))
    return drift.Comparison(
        name="served vs training", kind=drift.SKEW, current_label="served", reference_label=span,
        current=drift.statistics(str(served), [served], folder / "statistics"),
        reference=drift.statistics(str(trained), [trained], folder / "statistics"),
    )  # fmt: skip


def skew_table(schema, found: dict[str, tuple[str, float]]) -> list[dict]:
    """One row per schema feature with a distance: its measure, distance, skew threshold (None: not
    gated) and whether it is above; the most drifted (relative to its threshold) first."""
    table = []
    for feature in schema.feature:
        if feature.name not in found:
            continue
        measure, value = found[feature.name]
        _, threshold = drift.threshold_of(feature, drift.SKEW)
        table.append({"feature": feature.name, "measure": measure, "value": value, "threshold": threshold,
                      "above": threshold is not None and value > threshold})  # fmt: skip
    table.sort(key=lambda r: -(r["value"] / r["threshold"]) if r["threshold"] else -r["value"] / 10)
    return table


def _read_rows(path: Path):
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _write_rows(path: Path, columns: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([row.get(c, "") for c in columns] for row in rows)
