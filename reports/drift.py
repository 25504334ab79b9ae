"""`taxi-pipeline drift`: distances between consecutive spans, and between serving and training data.

The pipeline measures one pair per run (its span against the previous one); this measures every
consecutive pair of the data's history with the same TFDV comparators, statistics options and schema,
so thresholds can be judged against all the drift the data has shown. It is the table behind the
figures in schema/README.md.

Statistics are computed with TFDV from the raw CSVs (the CSV decoder ExampleGen uses) and cached in
`outputs/drift/statistics/` by file content, so a repeated call takes seconds.
"""

import copy
import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path

import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from config import folders
from config import pipeline as pipeline_config
from reports.validation_results import MEASURE_NAMES, TRAINING_ENVIRONMENT, num_examples

# A comparator with this threshold only records the distance (for features the schema does not gate).
_RECORD_ONLY = 1e-9
SKEW = "skew"
DRIFT = "drift"


@dataclasses.dataclass
class Comparison:
    """One column of the table: `current` against `reference` (consecutive spans, or serving vs. training)."""

    name: str
    kind: str  # DRIFT or SKEW
    current_label: str
    reference_label: str
    current: statistics_pb2.DatasetFeatureStatisticsList
    reference: statistics_pb2.DatasetFeatureStatisticsList


def statistics(
    pattern: str, files: list[Path], cache_dir: Path
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of the CSVs matching `pattern` (`files`), cached by content and statistics options."""
    digest = hashlib.sha256(f"{tfdv.__version__}/{pipeline_config.STATISTICS_HISTOGRAM_BUCKETS}".encode())
    for csv_file in sorted(files):
        digest.update(csv_file.read_bytes())
    cached = cache_dir / f"{digest.hexdigest()[:20]}.pb"
    if cached.exists():
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(cached.read_bytes())
    result = csv_statistics(pattern)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(result.SerializeToString())
    return result


def csv_statistics(pattern: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of the CSVs matching `pattern`, with the pipeline's histogram buckets."""
    # TFDV writes its result to a file first; without a path it leaves a temporary folder behind per call.
    with tempfile.TemporaryDirectory(prefix="csv_statistics_") as scratch:
        return tfdv.generate_statistics_from_csv(
            data_location=pattern,
            output_path=str(Path(scratch) / "statistics.tfrecord"),
            stats_options=tfdv.StatsOptions(
                num_histogram_buckets=pipeline_config.STATISTICS_HISTOGRAM_BUCKETS
            ),
        )


def read_schema(schema_path: Path) -> schema_pb2.Schema:
    return text_format.Parse(schema_path.read_text(), schema_pb2.Schema())


def _comparator(feature: schema_pb2.Feature, kind: str) -> schema_pb2.FeatureComparator:
    return feature.skew_comparator if kind == SKEW else feature.drift_comparator


def threshold_of(feature: schema_pb2.Feature, kind: str) -> tuple[str, float | None]:
    """(measure, threshold) of the feature's drift or skew comparator; threshold None: not gated.

    Without a comparator the measure is the one the schema's convention gives its type: L-infinity for
    strings (categorical), Jensen-Shannon divergence for numbers.
    """
    comparator = _comparator(feature, kind)
    if comparator.HasField("infinity_norm"):
        return "infinity_norm", comparator.infinity_norm.threshold
    if comparator.HasField("jensen_shannon_divergence"):
        return "jensen_shannon_divergence", comparator.jensen_shannon_divergence.threshold
    return ("infinity_norm" if feature.type == schema_pb2.BYTES else "jensen_shannon_divergence"), None


def _has_values(stats: statistics_pb2.DatasetFeatureStatisticsList) -> set[str]:
    """Features with at least one value in `stats` (TFDV cannot compare the others)."""
    found = set()
    for feature in stats.datasets[0].features if stats.datasets else []:
        common = (
            feature.num_stats.common_stats
            if feature.HasField("num_stats")
            else feature.string_stats.common_stats
        )
        if common.num_non_missing > 0:
            found.add(".".join(feature.path.step) or feature.name)
    return found


def _measuring_schema(schema: schema_pb2.Schema, kind: str, comparable: set[str]) -> schema_pb2.Schema:
    """The schema with a comparator of `kind` on every `comparable` feature, so TFDV records its distance."""
    measuring = copy.deepcopy(schema)
    for feature in measuring.feature:
        measure, threshold = threshold_of(feature, kind)
        comparator = _comparator(feature, kind)
        comparator.Clear()
        if feature.name in comparable:
            getattr(comparator, measure).threshold = threshold if threshold is not None else _RECORD_ONLY
    return measuring


def distances(comparison: Comparison, schema: schema_pb2.Schema) -> dict[str, tuple[str, float]]:
    """Feature -> (measure name, distance) of one comparison, for every feature TFDV can compare."""
    comparable = _has_values(comparison.current) & _has_values(comparison.reference)
    measuring = _measuring_schema(schema, comparison.kind, comparable)
    if comparison.kind == SKEW:
        anomalies = tfdv.validate_statistics(
            comparison.reference,
            measuring,
            environment=TRAINING_ENVIRONMENT,
            serving_statistics=comparison.current,
        )
    else:
        anomalies = tfdv.validate_statistics(
            comparison.current,
            measuring,
            environment=TRAINING_ENVIRONMENT,
            previous_statistics=comparison.reference,
        )
    found = {}
    for info in anomalies.drift_skew_info:
        measurements = info.skew_measurements if comparison.kind == SKEW else info.drift_measurements
        for measurement in measurements:
            found[".".join(info.path.step)] = (MEASURE_NAMES[measurement.type], measurement.value)
    return found


def span_label(span: int) -> str:
    """20162 -> '2016H2'."""
    return f"{span // 10}H{span % 10}"


def comparisons(settings: folders.Settings, spans: dict[int, list[Path]]) -> list[Comparison]:
    """Every consecutive span pair, oldest first, then serving logs vs. the newest span's training window.

    `spans`: span number -> its checked files (`settings.checked_spans_dir`, as the run's input checks
    laid them out: normalised where ExampleGen needs it, so TFDV reads them as ExampleGen does).
    """
    cache = settings.drift_dir / "statistics"
    folder = settings.checked_spans_dir
    by_span = {
        span: statistics(str(folder / f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}" / "*.csv"), files, cache)
        for span, files in sorted(spans.items())
    }
    ordered = sorted(by_span)
    found = [
        Comparison(
            name=f"{span_label(previous)}>{span_label(current)}",
            kind=DRIFT,
            current_label=span_label(current),
            reference_label=span_label(previous),
            current=by_span[current],
            reference=by_span[previous],
        )
        for previous, current in zip(ordered[:-1], ordered[1:], strict=True)
    ]
    serving_dir = settings.checked_serving_logs_dir
    if settings.serving_logs_dir and any(serving_dir.glob("*.csv")):
        training_dir = (
            settings.example_gen_input
            / f"{pipeline_config.SPAN_FOLDER_PREFIX}{ordered[-1]}"
            / pipeline_config.TRAIN_SPLIT
        )
        training_files = sorted(training_dir.glob("*.csv"))
        found.append(
            Comparison(
                name="serving vs train",
                kind=SKEW,
                current_label="serving logs",
                reference_label=f"training window of {span_label(ordered[-1])}",
                current=statistics(str(serving_dir / "*.csv"), sorted(serving_dir.glob("*.csv")), cache),
                reference=statistics(
                    str(training_dir / "*.csv"), [f.resolve() for f in training_files], cache
                ),
            )
        )
    return found


def drift_table(schema: schema_pb2.Schema, found: list[Comparison]) -> dict:
    """The table as data: per feature, its thresholds and the distance of every comparison."""
    measured = {comparison.name: distances(comparison, schema) for comparison in found}
    rows = []
    for feature in schema.feature:
        cells = {}
        for comparison in found:
            measure, threshold = threshold_of(feature, comparison.kind)
            if feature.name not in measured[comparison.name]:
                continue
            measure_name, value = measured[comparison.name][feature.name]
            cells[comparison.name] = {
                "measure": measure_name,
                "value": round(value, 4),
                "threshold": threshold,
                "above": threshold is not None and value > threshold,
            }
        if cells:
            rows.append(
                {
                    "feature": feature.name,
                    "drift_threshold": threshold_of(feature, DRIFT)[1],
                    "skew_threshold": threshold_of(feature, SKEW)[1],
                    "cells": cells,
                }
            )
    rows.sort(key=lambda row: -_worst_ratio(row))
    return {
        "comparisons": [
            {"name": c.name, "kind": c.kind, "current": c.current_label, "reference": c.reference_label}
            for c in found
        ],
        "examples": {c.name: (num_examples(c.reference), num_examples(c.current)) for c in found},
        "features": rows,
    }


def closeness(cell: dict) -> float:
    """How close a distance came to (or how far past) its threshold; an ungated one ranks by raw distance."""
    return cell["value"] / cell["threshold"] if cell["threshold"] else cell["value"] / 10


def _worst_ratio(row: dict) -> float:
    return max(map(closeness, row["cells"].values()), default=0.0)


def format_table(table: dict) -> str:
    """A fixed-width table: one line per feature, one column per comparison; '*' marks a crossed threshold."""
    names = [c["name"] for c in table["comparisons"]]
    width = max(16, *(len(n) + 1 for n in names))
    lines = [
        f"{'feature':<24} {'drift thr':>9} {'skew thr':>9} " + " ".join(f"{n:>{width}}" for n in names),
    ]
    for row in table["features"]:
        cells = []
        for name in names:
            cell = row["cells"].get(name)
            text = "-" if cell is None else f"{cell['value']:.3f}{'*' if cell['above'] else ' '}"
            cells.append(f"{text:>{width}}")
        thresholds = [
            "-" if row[key] is None else f"{row[key]:.2f}" for key in ("drift_threshold", "skew_threshold")
        ]
        lines.append(f"{row['feature']:<24} {thresholds[0]:>9} {thresholds[1]:>9} " + " ".join(cells))
    return "\n".join(lines)


def write_table(table: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=2) + "\n")
